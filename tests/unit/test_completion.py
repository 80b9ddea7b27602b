"""The generated bash completion, run by bash."""

import shutil
import subprocess

import pytest

from vlan_nats.cli import make_parser
from vlan_nats.completion import bash


def complete(*words: str) -> list[str]:
    """COMPREPLY for the command line ``words`` (the last one being typed)."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = bash(make_parser())
    line = " ".join(f"'{w}'" for w in ("vlan-nats", *words))
    prog = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; _vlan_nats; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, check=True)
    return r.stdout.split()


def test_commands():
    got = complete("")
    for cmd in ("up", "hub", "top", "status", "peers", "genkey", "install-systemd"):
        assert cmd in got


def test_options_of_a_command():
    assert complete("up", "--key") == ["--key-file"]
    assert "--metrics-listen" in complete("up", "--met")
    assert complete("hub", "--cluster-l") == ["--cluster-listen"]


def test_choices_and_files(tmp_path):
    assert complete("up", "--log-level", "") == ["debug", "info", "warning", "error"]
    assert complete("completion", "b") == ["bash"]
    f = tmp_path / "lab.key"
    f.write_bytes(b"x")
    assert complete("up", "--key-file", str(tmp_path / "la")) == [str(f)]
