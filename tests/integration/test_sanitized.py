"""The C datapath under AddressSanitizer and UndefinedBehaviorSanitizer
(lab/sanitized.py): the mixed c/python LAN test and the sealed LAN test run
again with every daemon on a sanitized build of the extension.  Any report
ends the daemon and fails the test.  Needs root."""

import os
import shlex

import pytest

from vlan_nats import cdatapath
from vlan_nats.lab import sanitized as san
from vlan_nats.lab.checks import wait_ping
from vlan_nats.lab.hosts import Lab

from .test_mixed import test_c_and_python_nodes_share_one_lan as mixed_lan
from .test_seal import test_sealed_lan_hides_everything_and_refuses_strangers as sealed_lan


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if not cdatapath.available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the C datapath is missing in CI: {cdatapath.why_missing()}")
        pytest.skip(cdatapath.why_missing())
    return san.build(tmp_path_factory.mktemp("sanitized"))


@pytest.fixture
def on_sanitized(build, tmp_path, monkeypatch):
    """Every daemon the lab starts in the test runs on the sanitized build;
    afterwards, no report may exist."""
    reports = tmp_path / "reports"
    monkeypatch.setenv("VLAN_NATS_LAB_LAUNCHER", shlex.join(san.launcher(build, reports)))
    yield build
    found = {p.name: p.read_text()[-3000:] for p in reports.iterdir()}
    assert not found, found


def test_daemons_run_on_the_sanitized_build(on_sanitized):
    with Lab(2, tag="vnz", dataplane="c") as lab:
        h1, h2 = lab.nodes
        assert wait_ping(h1.ns, h2.ip).received
        maps = open(f"/proc/{h1.proc.pid}/maps").read()
        assert str(on_sanitized) in maps and "libasan" in maps


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_mixed_lan_on_the_sanitized_build(tmp_path, on_sanitized, sealed):
    mixed_lan(tmp_path, sealed)


def test_sealed_lan_on_the_sanitized_build(tmp_path, on_sanitized):
    sealed_lan(tmp_path, "c")
