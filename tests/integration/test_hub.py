"""vlan-nats hub: nodes meet through it; it restarts a dead server and
stops cleanly."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from vlan_nats.lab.checks import wait_ping
from vlan_nats.lab.hosts import Lab, unique_prefix
from vlan_nats.lab.natsserver import NatsServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExternalServer(NatsServer):
    """Lab's server slot, filled by a hub we run ourselves."""

    def start(self, timeout: float = 10.0):
        return self

    def close(self) -> None:
        pass


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_hub_serves_restarts_and_stops(tmp_path):
    tok = tmp_path / "hub.token"
    tok.write_text(unique_prefix("tok"))
    tok.chmod(0o600)
    port, mon = free_port(), free_port()
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vlan_nats",
            "hub",
            "--listen",
            f"127.0.0.1:{port}",
            "--monitor",
            f"127.0.0.1:{mon}",
            "--token-file",
            str(tok),
        ],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in hub.stderr:
            lines.append(line.rstrip())
            if " ready listen=" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(15), lines[-10:]
        server = ExternalServer(port=port)
        with Lab(2, tag="vnh", server=server, node_args=["--token-file", str(tok)]) as lab:
            h1, h2 = lab.nodes
            assert wait_ping(h1.ns, h2.ip).received
            (nats_pid,) = children(hub.pid)
            os.kill(nats_pid, signal.SIGKILL)  # the server dies
            deadline = time.monotonic() + 15
            while not any("restarts=1" in ln for ln in lines):
                assert time.monotonic() < deadline, lines[-10:]
                time.sleep(0.1)
            assert wait_ping(h1.ns, h2.ip, timeout=20).received  # traffic resumes
            (new_pid,) = children(hub.pid)
            assert new_pid != nats_pid
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(15) == 0
        assert any("nats-server: Server Exiting" in ln for ln in lines), lines[-10:]
        assert not os.path.exists(f"/proc/{new_pid}")
        conf_dirs = [
            ln.split("configuration file: ")[1].split(" ")[0]
            for ln in lines
            if "configuration file: " in ln
        ]
        assert conf_dirs and not any(os.path.exists(p) for p in conf_dirs)
    finally:
        if hub.poll() is None:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait()


def test_hub_port_in_use_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "vlan_nats",
                "hub",
                "--listen",
                f"127.0.0.1:{port}",
                "--monitor",
                "off",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 1, r.stderr
    assert "before it was ready" in r.stderr and "Traceback" not in r.stderr
