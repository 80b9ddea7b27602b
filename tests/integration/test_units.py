"""The generated systemd units can start their installation.

systemd is not PID 1 here, so the test does what the units' ProtectHome=
and PrivateTmp= do to the file system (systemd.exec(5)): in a private
mount namespace, an empty tmpfs over /home, /root and /run/user (``yes``)
or a read-only bind (``read-only``), and a fresh tmpfs over /tmp and
/var/tmp (``yes``); then it runs the unit's ExecStart binary.  Under
``yes`` an installation in a home directory or in /tmp is simply gone, and
systemd fails with status 203/EXEC.
"""

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import vlan_nats

HOME_DIRS = ("/home", "/root", "/run/user")
REPO = Path(vlan_nats.__file__).resolve().parent.parent


def setting(unit: str, key: str) -> str:
    values = re.findall(rf"^{key}=(.*)$", unit, re.M)
    assert len(values) == 1, (key, values)
    return values[0]


def sandboxed(unit: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the unit's ExecStart program with ``args`` under its ProtectHome=
    and PrivateTmp=."""
    exe = setting(unit, "ExecStart").split()[0]
    home, tmp = setting(unit, "ProtectHome"), setting(unit, "PrivateTmp")
    steps = []
    for d in HOME_DIRS:
        if home == "yes":
            steps.append(f"[ ! -d {d} ] || mount -t tmpfs -o mode=0755 tmpfs {d}")
        elif home == "read-only":
            ro = f"mount --bind {d} {d}; mount -o remount,bind,ro {d}"
            steps.append(f"[ ! -d {d} ] || {{ {ro}; }}")
    if tmp == "yes":
        steps += ["mount -t tmpfs tmpfs /tmp", "mount -t tmpfs tmpfs /var/tmp"]
    script = "set -e\n" + "\n".join(steps) + '\nexec "$@"\n'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", exe, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def install_units(python: str, into: Path) -> dict[str, str]:
    into.mkdir()
    r = subprocess.run(
        [python, "-m", "vlan_nats", "install-systemd", "--dir", str(into), "--no-reload"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return {p.name: p.read_text() for p in into.iterdir()}


def venv_in(where: Path) -> str:
    """A small virtualenv at ``where`` that runs this checkout (no pip): how
    a user's `python -m venv` + editable install looks to systemd."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]
    Path(site, "vlan_nats_dev.pth").write_text("\n".join([str(REPO), *deps]) + "\n")
    script = where / "bin" / "vlan-nats"
    script.write_text(f"#!{python}\nimport sys\nfrom vlan_nats.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return str(python)


def check_starts(units: dict[str, str]) -> None:
    for name in ("vlan-nats@.service", "vlan-nats-hub.service"):
        r = sandboxed(units[name], "--version")
        assert r.returncode == 0 and r.stdout.startswith("vlan-nats "), (name, r.stderr)


def test_units_of_this_installation_can_start_it(tmp_path):
    check_starts(install_units(sys.executable, tmp_path / "units"))


@pytest.mark.parametrize("base", ["/tmp", "/root"])
def test_units_of_an_installation_in_tmp_or_home_can_start_it(base, tmp_path):
    import shutil
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="vlan-nats-unit-test-", dir=base))
    try:
        python = venv_in(where / "venv")
        units = install_units(python, tmp_path / "units")
        unit = units["vlan-nats@.service"]
        if base == "/tmp":
            assert setting(unit, "PrivateTmp") == "no" and str(where) in unit
        else:
            assert setting(unit, "ProtectHome") == "read-only"
        check_starts(units)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_the_sandbox_hides_what_systemd_hides(tmp_path):
    """The emulation can fail: the shipped hardening (yes/yes) cannot start
    an installation under /tmp."""
    where = Path(tmp_path) / "venv"
    if not str(where).startswith("/tmp/"):
        pytest.skip("pytest's tmp_path is not under /tmp")
    venv_in(where)
    from vlan_nats import units

    text = units.render("vlan-nats@.service", exe=str(where / "bin" / "vlan-nats"), paths=[])
    assert setting(text, "PrivateTmp") == "yes"
    r = sandboxed(text, "--version")
    assert r.returncode != 0
