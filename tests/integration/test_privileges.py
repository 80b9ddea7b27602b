"""--run-as: the daemon drops root after set-up and keeps working."""

import pwd
import time

from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_run_as_nobody_keeps_only_net_admin():
    nobody = pwd.getpwnam("nobody")
    with Lab(2, tag="vnr", start_nodes=False) as lab:
        h1, h2 = lab.nodes
        h1.args += ["--run-as", "nobody"]
        h1.start()
        h2.start()
        assert any("dropped root user=nobody" in ln for ln in h1.lines), h1.lines[-5:]
        st = proc_status(h1.proc.pid)
        assert st["Uid"].split() == [str(nobody.pw_uid)] * 4
        assert st["Gid"].split() == [str(nobody.pw_gid)] * 4
        assert int(st["CapEff"], 16) == 1 << 12  # CAP_NET_ADMIN
        assert int(st["CapPrm"], 16) == 1 << 12
        assert st["NoNewPrivs"].strip() == "1"
        assert ping(h1.ns, h2.ip).ok
        # It still follows ip changes made by the administrator.
        h1.ns.run("ip", "link", "set", "dev", h1.dev, "mtu", "1400")
        deadline = time.monotonic() + 5
        while not any("mtu changed old=1500 new=1400" in ln for ln in h1.lines):
            assert time.monotonic() < deadline, h1.lines[-5:]
            time.sleep(0.1)
        assert ping(h1.ns, h2.ip, size=1300).ok
        assert h1.stop() == 0
        out = h1.ns.run("ip", "link", "show", "dev", h1.dev, check=False)
        assert out.returncode != 0  # the TAP is gone


def test_run_as_unknown_user_is_a_config_error():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "vlan_nats", "up", "--run-as", "no-such-user-x", "--mac", "random"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "no such user" in r.stderr and "Traceback" not in r.stderr
