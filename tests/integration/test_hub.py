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
from vlan_nats.lab.hosts import Lab, free_port, unique_prefix

from .helpers import ExternalServer


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_hub_serves_restarts_and_stops(tmp_path):
    tok = tmp_path / "hub.token"
    tok.write_text(unique_prefix("tok"))
    tok.chmod(0o600)
    port, mon = free_port(), free_port()
    hub = subprocess.Popen(
        [*hub_cmd(port, f"127.0.0.1:{mon}"), "--token-file", str(tok)],
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
        r = subprocess.run(hub_cmd(port), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert "is in use" in r.stderr and "Traceback" not in r.stderr


def hub_cmd(port: int, monitor: str = "off", store: str = "off") -> list[str]:
    return [
        sys.executable,
        "-m",
        "vlan_nats",
        "hub",
        "--listen",
        f"127.0.0.1:{port}",
        "--monitor",
        monitor,
        "--store",
        store,
    ]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_hub(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    hub = subprocess.Popen(
        hub_cmd(port), stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    assert hub.stderr is not None
    for line in hub.stderr:
        if " ready " in line:
            return hub
    raise AssertionError(f"hub not ready: {hub.wait()}")


def test_kill_9_of_the_hub_takes_its_server_along(tmp_path):
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    hub = start_hub(port, env)
    try:
        (server,) = children(hub.pid)
        assert listening(port)
        hub.kill()
        hub.wait()
        deadline = time.monotonic() + 5
        while listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not listening(port), "nats-server outlived its hub"
        # Gone (or a zombie waiting for a reaper), never a server on its own.
        # (It closes its port before it exits: under load that takes a moment.)
        def state() -> bytes:
            ps = subprocess.run(["ps", "-o", "stat=", "-p", str(server)], capture_output=True)
            return ps.stdout.strip()[:1]

        while state() not in (b"", b"Z") and time.monotonic() < deadline + 5:
            time.sleep(0.05)
        assert state() in (b"", b"Z"), state()
        assert len(list(tmp_path.glob("vlan-nats-hub-*"))) == 1  # the dead hub's directory
        # The next hub starts, on the same port, and tidies up after the dead one.
        hub = start_hub(port, env)
        assert len(list(tmp_path.glob("vlan-nats-hub-*"))) == 1
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(15) == 0
        assert list(tmp_path.glob("vlan-nats-hub-*")) == []
    finally:
        if hub.poll() is None:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait()


def test_a_server_left_by_an_older_hub_is_named(tmp_path):
    """Hubs before PDEATHSIG left their server running after a kill -9."""
    port = free_port()
    left = tmp_path / "vlan-nats-hub-old"
    left.mkdir()
    (left / "nats-server.conf").write_text(f'listen: "127.0.0.1:{port}"\n')
    from vlan_nats.lab.natsserver import find_binary

    server = subprocess.Popen(
        [find_binary(), "-c", str(left / "nats-server.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        r = subprocess.run(
            hub_cmd(port),
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
        assert r.returncode == 1, r.stderr
        err = [x for x in r.stderr.splitlines() if "error" in x]
        assert err == [
            f"vlan-nats hub: error: listen address 127.0.0.1:{port} is in use: a nats-server "
            f"left by an earlier hub is running (pid {server.pid}); stop it with: kill {server.pid}"
        ], r.stderr
        assert left.is_dir()  # still in use: not removed under its feet
    finally:
        server.kill()
        server.wait()


def test_two_hubs_in_a_cluster_serve_one_pool(tmp_path):
    """--ipam on two clustered hubs (JetStream on, each its own --store):
    nodes on either hub get distinct addresses of the one pool and ping."""
    ports = [free_port() for _ in range(2)]
    routes = [free_port() for _ in range(2)]
    hubs: list[subprocess.Popen[str]] = []
    lines: list[list[str]] = [[], []]
    try:
        for i in range(2):
            cmd = [
                *hub_cmd(ports[i], store=str(tmp_path / f"store{i}")),
                "--server-name", f"hub{i}", "--cluster-listen", f"127.0.0.1:{routes[i]}",
                "--route", f"nats://127.0.0.1:{routes[1 - i]}",
                "--ipam", "0=198.18.10.0/28", "--lease", "60",
            ]  # fmt: skip
            hubs.append(
                subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
            )

            def read(h=hubs[-1], out=lines[i]):
                for line in h.stderr:
                    out.append(line.rstrip())

            threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 40
        while not all(any("address service ready" in x for x in out) for out in lines):
            assert time.monotonic() < deadline, lines
            assert all(h.poll() is None for h in hubs), lines
            time.sleep(0.1)
        lab = Lab(0, tag="vnh", server=ExternalServer(port=ports[0]))
        with lab:
            for i in (1, 2):
                node = lab.add_node(i, extra=["--address", "auto"], start=False)
                node.args[node.args.index("--server") + 1] = f"nats://127.0.0.1:{ports[i - 1]}"
                node.start()
            got = [node.wait_lease().split("/")[0] for node in lab.nodes]
            assert len(set(got)) == 2 and all(a.startswith("198.18.10.") for a in got), got
            assert wait_ping(lab.nodes[0].ns, got[1]).received
        for h in hubs:
            h.send_signal(signal.SIGTERM)
        assert [h.wait(20) for h in hubs] == [0, 0], lines
    finally:
        for h in hubs:
            if h.poll() is None:
                os.killpg(h.pid, signal.SIGKILL)
                h.wait()
