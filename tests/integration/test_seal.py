"""Sealed networks: relays see no plaintext, wrong keys and replays are
dropped, and a key rollover loses no pings."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time

import nats

from vlan_nats import keys
from vlan_nats.lab.checks import ping, transfer, wait_ping, wait_until
from vlan_nats.lab.hosts import Lab

PATTERN = "c0ffee15900d"  # ping -p: repeated through every echo payload


class Sniffer:
    """A plain NATS client subscribed to ``vlan.>``: what a relay sees."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.msgs: list[tuple[str, bytes]] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(self.url)

        async def on(msg):
            self.msgs.append((msg.subject, msg.data))

        await nc.subscribe("vlan.>", cb=on)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.drain()

    def __enter__(self):
        self._t.start()
        assert self._ready.wait(10), "sniffer did not connect"
        return self

    def __exit__(self, *exc):
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._t.join(10)


def keyfile(tmp_path, name):
    p = tmp_path / name
    keys.write_new_key(str(p))
    return str(p)


def drops(node):
    return node.counters()["drops"]


async def publish(url, subject, data):
    nc = await nats.connect(url)
    await nc.publish(subject, data)
    await nc.flush()
    await nc.close()


def test_sealed_lan_hides_everything_and_refuses_strangers(tmp_path, dataplane):
    key = keyfile(tmp_path, "lab.key")
    with Lab(2, dataplane=dataplane, tag="vns", start_nodes=False) as lab:
        h1, h2 = lab.nodes
        for n in lab.nodes:
            n.args += ["--key-file", key]
            n.start()
        with Sniffer(lab.server.url) as sniff:
            wait_ping(h1.ns, h2.ip)
            r = h1.ns.run("ping", "-c", "5", "-i", "0.1", "-p", PATTERN, h2.ip, check=False)
            assert " 0% packet loss" in r.stdout, r.stdout
            t = transfer(h1, h2, 8)
            assert t.ok, t
            # The transfer went through this server (GSO: up to 64 KiB per message).
            assert wait_until(lambda: sum(len(d) for _, d in sniff.msgs) > 8 << 20, 5)
        secrets = [bytes.fromhex(PATTERN)]
        for n in (h1, h2):
            secrets.append(bytes.fromhex(n.mac().replace(":", "")))
            secrets.append(bytes(int(x) for x in n.ip.split(".")))
        # Every frame sealed.  (The control plane, vlan.<net>.ctl.>, is not:
        # peers replies and address claims are JSON, docs/security.md.)
        frames = [d for s, d in sniff.msgs if ".ctl." not in s]
        assert {d[1] for d in frames} == {0x02}
        leaked = [s.hex() for s in secrets if any(s in d for d in frames)]
        assert leaked == []

        replay_and_moved_are_refused(lab, sniff, h1, h2)
        strangers_reach_nobody(tmp_path, lab, h1, h2)


def replay_and_moved_are_refused(lab, sniff, h1, h2):
    # A captured message published again is a replay.
    mac1, mac2 = (n.mac().replace(":", "") for n in (h1, h2))
    subject, data = next((s, d) for s, d in sniff.msgs if s.endswith(mac2))
    asyncio.run(publish(lab.server.url, subject, data))
    # One sent to h1, moved onto h2's subject, no longer authenticates.
    to_h1 = next(d for s, d in sniff.msgs if s.endswith(mac1))
    asyncio.run(publish(lab.server.url, subject, to_h1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        d2 = drops(h2)
        if d2.get("replay") and d2.get("seal_auth"):
            break
        time.sleep(0.2)
    assert d2.get("replay") == 1 and d2.get("seal_auth") == 1, d2


def strangers_reach_nobody(tmp_path, lab, h1, h2):
    # A node with another key reaches nobody, and its frames are counted.
    other = keyfile(tmp_path, "other.key")
    h3 = lab.add_node(3, extra=["--key-file", other])
    assert not ping(h3.ns, h1.ip, count=3, deadline=2).ok
    assert not ping(h1.ns, h3.ip, count=2, deadline=2).ok
    assert drops(h1).get("seal_key", 0) > 0
    assert drops(h3).get("seal_key", 0) > 0
    # ... and said, not only counted: which key, on which subject.
    theirs = keys.describe(keys.load_key(other))
    said = [line for line in h1.lines if "under a key we do not hold" in line]
    assert len(said) == 1 and f"key={theirs}" in said[0] and "subject=vlan.0." in said[0]
    # A node without a key reaches nobody either, and both sides say why.
    h4 = lab.add_node(4)
    assert not ping(h4.ns, h2.ip, count=2, deadline=2).ok
    assert not ping(h2.ns, h4.ip, count=2, deadline=2).ok
    assert drops(h2).get("unsealed", 0) > 0
    assert drops(h4).get("sealed_no_key", 0) > 0
    assert any("plain frame on a sealed network" in line for line in h2.lines)
    assert any("we have no --key-file" in line for line in h4.lines)
    assert ping(h1.ns, h2.ip, count=2).ok


def test_key_rollover_loses_no_pings(tmp_path, dataplane):
    old = keyfile(tmp_path, "old")
    new = keyfile(tmp_path, "new")
    nodes_keys = []
    for i in (1, 2):
        k, a = tmp_path / f"h{i}.key", tmp_path / f"h{i}.accept.key"
        os.link(old, k)
        nodes_keys.append((k, a))
    with Lab(2, dataplane=dataplane, tag="vns", start_nodes=False) as lab:
        for node, (k, a) in zip(lab.nodes, nodes_keys, strict=True):
            node.args += ["--key-file", str(k), "--accept-key-file", str(a)]
            node.start()
        h1, h2 = lab.nodes
        wait_ping(h1.ns, h2.ip)
        pinger = h1.ns.popen("ping", "-n", "-c", "120", "-i", "0.05", "-W", "1", h2.ip,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip

        def pings_arrive(n=3):
            """Until ``n`` more frames reached h2's TAP: the pings flow."""
            base = h2.status()["counters"]["tap_tx_frames"]
            assert wait_until(lambda: h2.status()["counters"]["tap_tx_frames"] >= base + n, 5)

        def reload_all(edit):
            pings_arrive()
            for node, (k, a) in zip(lab.nodes, nodes_keys, strict=True):
                edit(k, a)
                seen = len(node.lines)
                node.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 5
                while not any("sealing key=" in ln for ln in node.lines[seen:]):
                    assert time.monotonic() < deadline, node.lines[-5:]
                    time.sleep(0.02)

        reload_all(lambda k, a: os.link(new, a))  # 1: accept the new key

        def swap(k, a):  # 2: seal with the new key, still accept the old one
            os.unlink(k), os.unlink(a)
            os.link(new, k), os.link(old, a)

        reload_all(swap)
        reload_all(lambda k, a: os.unlink(a))  # 3: the old key is gone
        out, _ = pinger.communicate(timeout=30)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m and m.group(1) == m.group(2) == "120", out
        # Now only the new key works: a node still on the old key is refused.
        h3 = lab.add_node(3, extra=["--key-file", old])
        assert not ping(h3.ns, h1.ip, count=2, deadline=2).ok
        assert ping(h1.ns, h2.ip, count=2).ok
        kid = keys.describe(keys.load_key(new))
        assert any(f"sealing key={kid} accepting={kid}" in ln for ln in h1.lines), h1.lines[-5:]


def test_bad_key_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("nope\n")
    r = subprocess.run(
        [sys.executable, "-m", "vlan_nats", "up", "--key-file", str(bad), "--mac", "random"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "genkey" in r.stderr, r.stderr
