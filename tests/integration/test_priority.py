"""--datapath-nice: the thread that moves frames runs at it, on both
datapaths, and a daemon that cannot take it says so (root, integration)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab


def nice_of(pid: int, tid: int) -> int:
    stat = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
    return int(stat[16])


def mover(pid: int, dataplane: str) -> int:
    """The thread that moves frames: the C datapath's own, or the event loop."""
    if dataplane == "python":
        return pid
    for tid in os.listdir(f"/proc/{pid}/task"):
        if open(f"/proc/{pid}/task/{tid}/comm").read().strip() == "vn-datapath":
            return int(tid)
    raise AssertionError("no vn-datapath thread")


@pytest.mark.parametrize("nice", [None, 0, -7])
def test_the_datapath_thread_runs_at_its_nice(dataplane, nice):
    extra = [] if nice is None else ["--datapath-nice", str(nice)]
    with Lab(2, tag="vnp", dataplane=dataplane, node_args=extra) as lab:
        h1, h2 = lab.nodes
        want = -10 if nice is None else nice
        for h in (h1, h2):
            assert nice_of(h.proc.pid, mover(h.proc.pid, dataplane)) == want
            st = h.status()
            if want:
                assert st["datapath_nice"] == {"wanted": want, "nice": want, "error": None}
            else:
                assert st["datapath_nice"] is None
        if dataplane == "c":  # the control plane's event loop keeps the process's
            assert nice_of(h1.proc.pid, h1.proc.pid) == 0
        assert ping(h1.ns, h2.ip, count=3).ok


def test_without_cap_sys_nice_the_daemon_says_so(dataplane):
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    with Lab(2, tag="vnp", dataplane=dataplane, start_nodes=False) as lab:
        h1, h2 = lab.nodes
        h1.launcher = [setpriv, "--bounding-set", "-sys_nice", "--"]
        h1.start()
        h2.start()
        st = h1.status()
        nice = st["datapath_nice"]
        assert nice["wanted"] == -10 and nice["nice"] == 0, nice
        assert "Permission denied" in nice["error"] and "CAP_SYS_NICE" in nice["error"]
        assert nice_of(h1.proc.pid, mover(h1.proc.pid, dataplane)) == 0
        warned = [ln for ln in h1.lines if "datapath priority" in ln]
        assert len(warned) == 1 and "WARNING" in warned[0], warned
        res = subprocess.run(
            [sys.executable, "-m", "vlan_nats", "status", "--dev", h1.dev],
            capture_output=True,
            text=True,
        )
        assert res.returncode == 3, res.stdout + res.stderr
        assert "datapath priority: cannot run" in res.stdout
        assert ping(h1.ns, h2.ip, count=3).ok  # frames still move, at nice 0
        assert h2.status()["datapath_nice"]["error"] is None
