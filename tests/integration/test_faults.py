"""Faults: the server goes away, hostile messages, signals, failed starts."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import nats

from vlan_nats.lab.checks import ping, wait_ping
from vlan_nats.lab.hosts import Lab, Namespace, unique_prefix
from vlan_nats.lab.natsserver import NatsServer


def tun_devices() -> set[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show", "type", "tun"], capture_output=True, text=True
    ).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def test_server_killed_and_restarted(lab2):
    h1, h2 = lab2.nodes
    assert ping(h1.ns, h2.ip).ok
    lab2.server.kill()
    assert ping(h1.ns, h2.ip, count=1, deadline=1).received == 0
    lab2.server.start()  # same port
    r = wait_ping(h1.ns, h2.ip, timeout=20)
    assert r.received >= 1, r.output
    assert ping(h1.ns, h2.ip).ok
    assert any("nats reconnected" in line for line in h1.lines)
    assert h1.counters()["drops"].get("disconnected", 0) >= 1


def test_garbage_is_counted_and_forwarding_continues(lab2):
    h1, h2 = lab2.nodes
    mac = h2.mac().replace(":", "")
    frame_to_h2 = bytes.fromhex(mac) + bytes.fromhex("020000000077") + b"\x08\x00"
    payloads = [
        b"",  # empty
        b"\x01",  # 1 byte
        os.urandom(13),  # 13 bytes
        b"\x01\x00" + os.urandom(70_000),  # 70 KB: larger than the device allows
        b"\x01\x00" + frame_to_h2[:10],  # valid header, truncated frame
    ]

    async def inject():
        nc = await nats.connect(lab2.server.url)
        for p in payloads:
            await nc.publish(f"vlan.0.u.{mac}", p)
            await nc.publish("vlan.0.b", p)
        await nc.flush()
        await nc.close()

    asyncio.run(inject())
    assert ping(h1.ns, h2.ip).ok
    drops = h2.counters()["drops"]
    assert drops.get("empty") == 2
    assert drops.get("short") == 2
    assert drops.get("oversize") == 2
    assert drops.get("runt", 0) + drops.get("version", 0) + drops.get("flags", 0) >= 4
    assert h2.proc.poll() is None


def test_sigterm_removes_the_tap_and_exits_0(lab2):
    h1, h2 = lab2.nodes
    assert h2.dev in h2.ns.run("ip", "link").stdout
    assert h2.stop(signal.SIGTERM) == 0
    assert h2.ns.run("ip", "link", "show", "dev", h2.dev, check=False).returncode != 0


def test_sigkill_leaves_no_tap(lab2):
    h1, h2 = lab2.nodes
    h1.stop(signal.SIGKILL)
    assert h1.ns.run("ip", "link", "show", "dev", h1.dev, check=False).returncode != 0


def test_nats_down_at_start_then_up():
    prefix = unique_prefix("vnf")
    server = NatsServer()
    server.start()
    port = server.port
    server.stop()
    ns = Namespace(f"{prefix}-h1")
    proc = subprocess.Popen(
        up_cmd(
            "--server",
            f"nats://127.0.0.1:{port}",
            "--netns",
            ns.name,
            "--dev",
            f"{prefix}n1",
            "--mac",
            "random",
        ),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "retrying" in line:
                break
        server = NatsServer(port=port).start()
        for line in proc.stderr:
            lines.append(line)
            if " ready " in line:
                break
        assert any(" ready " in x for x in lines), lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop()
        ns.delete()


def up_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vlan_nats", "up", *args]


def run_up(*args):
    return subprocess.run(
        up_cmd("--mac", "random", *args),
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_failed_starts_are_one_line_and_leave_nothing():
    prefix = unique_prefix("vnf")
    before = tun_devices()
    ns = Namespace(f"{prefix}-h1")
    try:
        # Device name taken (in the target namespace).
        ns.run("ip", "link", "add", f"{prefix}x", "type", "veth", "peer", "name", f"{prefix}y")
        r = run_up("--netns", ns.name, "--dev", f"{prefix}x")
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "already exists" in r.stderr
        # Device name taken (here).
        subprocess.run(["ip", "tuntap", "add", "dev", f"{prefix}t", "mode", "tap"], check=True)
        try:
            r = run_up("--dev", f"{prefix}t")
            assert r.returncode == 1 and "already exists" in r.stderr, r.stderr
        finally:
            subprocess.run(["ip", "tuntap", "del", "dev", f"{prefix}t", "mode", "tap"])
        # Missing namespace.
        r = run_up("--netns", f"{prefix}-missing", "--dev", f"{prefix}z")
        assert r.returncode == 1 and r.stderr.count("\n") == 1
        assert "does not exist" in r.stderr
        # Bad option.
        r = run_up("--frobnicate")
        assert r.returncode == 2 and r.stderr.count("\n") == 1
        assert "Traceback" not in r.stderr
    finally:
        ns.delete()
    assert tun_devices() == before
    assert not os.path.exists(f"/run/netns/{prefix}-missing")


def test_runs_in_the_callers_namespace_without_netns():
    """The common case on a real host: no --netns; the TAP stays here."""
    prefix = unique_prefix("vnr")
    dev = f"{prefix}x"
    with NatsServer() as server:
        proc = subprocess.Popen(
            up_cmd(
                "--server",
                server.url,
                "--dev",
                dev,
                "--mac",
                "random",
                "--mtu",
                "9000",
            ),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for line in proc.stderr:
                if " ready " in line:
                    break
            link = subprocess.run(
                ["ip", "-d", "link", "show", "dev", dev], capture_output=True, text=True
            ).stdout
            flags = link.split("<", 1)[1].split(">", 1)[0].split(",")
            assert "mtu 9000" in link and "UP" in flags, link
            st = subprocess.run(
                [sys.executable, "-m", "vlan_nats", "status", "--dev", dev, "--json"],
                capture_output=True,
                text=True,
            )
            assert st.returncode == 0 and f'"dev": "{dev}"' in st.stdout, st.stderr
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert dev not in tun_devices()


FLOOD = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
frame = b"\\xff" * 6 + b"\\x02\\x00\\x00\\x00\\x00\\x99" + b"\\x08\\x06" + bytes(46)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    for _ in range(1000):
        try:
            s.send(frame)
        except OSError:
            pass
"""


def test_tap_flood_with_nats_down_does_not_starve_the_loop(monkeypatch, dataplane):
    """NATS down, the TAP flooded: every full batch is dropped (counted)
    and the loop still answers status at once.  On the pure-Python backend
    the flood outruns the reader, so a pump that re-read full batches
    without yielding kept status waiting 0.75-2.9 s here."""
    monkeypatch.setenv("VLAN_NATS_FASTPATH", "python")
    with Lab(1, dataplane=dataplane, tag="vnf") as lab:
        h1 = lab.nodes[0]
        lab.server.stop()
        deadline = time.monotonic() + 10
        while h1.status()["connected"] and time.monotonic() < deadline:
            time.sleep(0.1)
        flood = [
            h1.ns.popen(sys.executable, "-c", FLOOD, h1.dev, "6", stderr=subprocess.DEVNULL)
            for _ in range(3)
        ]
        try:
            time.sleep(0.5)
            slowest = 0.0
            end = time.monotonic() + 4
            while time.monotonic() < end:
                t0 = time.monotonic()
                st = h1.status(timeout=5)
                slowest = max(slowest, time.monotonic() - t0)
                time.sleep(0.05)
        finally:
            for p in flood:
                p.kill()
                p.wait()
        # Here: 0.009 s now; 0.75-2.9 s for a pump that did not yield.
        assert slowest < 0.3, f"status took {slowest:.2f} s"
        assert st["connected"] is False
        assert st["counters"]["drops"]["disconnected"] > 100_000
