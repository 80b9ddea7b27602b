"""Integration tests: root, /dev/net/tun, namespaces, a real nats-server.

They skip without root on a developer machine; under CI (CI=true) a test
that would skip fails instead, so a broken set-up cannot pass silently.
"""

import os
import shutil

import pytest

from vlan_nats import cdatapath
from vlan_nats.lab.hosts import Lab

# Every test that moves frames runs on both datapaths (--dataplane).
DATAPATHS = ("python", "c")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    for tool in ("ip", "ping"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.root)


def require_root() -> None:
    """Skip without root etc.; under CI=true fail instead.  Every fixture
    that builds hosts calls it first: a module-scoped fixture runs before
    the autouse check below, so its own skip would otherwise win."""
    why = _missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"integration test cannot run in CI: {why}")
        pytest.skip(why)


@pytest.fixture(autouse=True)
def _root_only():
    require_root()


@pytest.fixture(scope="module", params=DATAPATHS)
def dataplane(request):
    """The datapath a test's daemons run (both, one after the other).  The C
    one must be built in CI (scripts/install.sh installs libnats-dev)."""
    if request.param == "c" and not cdatapath.available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the C datapath is missing in CI: {cdatapath.why_missing()}")
        pytest.skip(cdatapath.why_missing())
    return request.param


@pytest.fixture(scope="module")
def lab3(dataplane):
    """A nats-server and three hosts (198.18.0.1-3/24), shared by a module."""
    require_root()
    with Lab(3, tag="vnt", dataplane=dataplane) as lab:
        yield lab


@pytest.fixture
def lab2(dataplane):
    require_root()
    with Lab(2, tag="vnt", dataplane=dataplane) as lab:
        yield lab
