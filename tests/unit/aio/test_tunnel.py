"""The forwarding loop with a fake TAP (socketpair) and a fake NATS."""

import asyncio
from dataclasses import dataclass

import pytest

from vlan_nats.aio.tunnel import Tunnel
from vlan_nats.core import wire
from vlan_nats.core.counters import Counters, DropReason
from vlan_nats.core.events import Event
from vlan_nats.core.forwarding import Forwarder
from vlan_nats.core.subjects import SubjectScheme
from vlan_nats.fastpath import Tap

ME = bytes.fromhex("020000000001")
PEER = bytes.fromhex("020000000002")
BCAST = b"\xff" * 6
MARK = bytes.fromhex("0200000000ee")


def frame(dst, src, n=46):
    return dst + src + b"\x08\x00" + bytes(i & 0xFF for i in range(n))


@dataclass
class Msg:
    data: bytes
    subject: str = "vlan.0.u.020000000001"


class FakeNC:
    def __init__(self):
        self.published = []
        self.event = asyncio.Event()

    async def publish(self, subject, payload):
        self.published.append((subject, bytes(payload)))
        self.event.set()


class FakeLink:
    """``checked`` is set each time the pump asks whether we are connected
    (once per batch): what a test awaits instead of sleeping."""

    def __init__(self):
        self.nc = FakeNC()
        self.connected = True
        self.checked = asyncio.Event()
        self.on_msg = None

    def deliver_to(self, handler):
        self.on_msg = handler

    @property
    def is_connected(self):
        self.checked.set()
        return self.connected


async def make(fake_tap, compat=False, bridge=False, storm=None, on_events=None):
    ours, kernel = fake_tap
    link = FakeLink()
    c = Counters()
    t = Tunnel(
        Tap(ours.fileno(), "fake", True),
        link,
        SubjectScheme("vlan", "0", compat),
        Forwarder(ME, bridge=bridge),
        c,
        mtu=1500,
        storm=storm,
        on_events=on_events,
    )
    t.start()
    return t, link, c, kernel


async def published(link, n):
    while len(link.nc.published) < n:
        link.nc.event.clear()
        await asyncio.wait_for(link.nc.event.wait(), 2)
    return link.nc.published


async def recv(kernel):
    """The next frame the tunnel wrote to the TAP (awaited, 2 s at most)."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(kernel, 70000), 2)
    except TimeoutError:
        raise AssertionError("nothing written to the TAP") from None


async def nothing_more(t, link, kernel, n):
    """After ``n`` publications, prove no other one is pending: a marker
    frame read after them is published next (the pump keeps order).  The
    marker's MAC is made known first, so it is not flooded itself."""
    await t.on_msg(Msg(wire.encode(frame(ME, MARK))))
    kernel.send(bytes(12) + frame(MARK, ME))
    got = await published(link, n + 1)
    assert got[n][0] == "vlan.0.u.0200000000ee" and len(got) == n + 1, got[n:]
    return got[:n]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


def test_tap_to_nats_subjects_and_header(backend, fake_tap):
    async def body():
        t, link, c, kernel = await make(fake_tap)
        f1, f2 = frame(PEER, ME), frame(BCAST, ME)
        f3 = frame(bytes.fromhex("3333ff000002"), ME)
        vh = bytes([1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0])  # NEEDS_CSUM
        kernel.send(bytes(12) + f1)
        kernel.send(bytes(12) + f2)
        kernel.send(vh + f3)
        got = await published(link, 4)
        await t.stop()
        assert got == [
            ("vlan.0.u.020000000002", b"\x01\x00" + f1),
            ("vlan.0.f", b"\x01\x00" + f1),  # PEER never seen: unknown unicast
            ("vlan.0.b", b"\x01\x00" + f2),
            ("vlan.0.m.3333ff000002", b"\x01\x01" + vh + f3),
        ]
        assert c.tap_rx_frames == 3 and c.nats_tx_msgs == 3 and c.flooded == 1
        assert c.tap_rx_bytes == len(f1) + len(f2) + len(f3)

    run(body())


def test_compat_publishes_bare_frames(backend, fake_tap):
    async def body():
        t, link, c, kernel = await make(fake_tap, compat=True)
        f = frame(PEER, ME)
        kernel.send(bytes(12) + f)
        got = await published(link, 1)
        await t.stop()
        assert got == [("vlan.0.30323a30303a30303a30303a30303a3032", f)]

    run(body())


def test_nats_to_tap_and_drops(backend, fake_tap):
    async def body():
        t, link, c, kernel = await make(fake_tap)
        good = frame(ME, PEER)
        for data in [
            b"",
            b"\x01",
            b"\x01\x00" + bytes(13),
            wire.encode(frame(ME, ME)),
            wire.encode(frame(bytes.fromhex("020000000009"), PEER)),
            b"\x07\x00" + good,
            wire.encode(good + bytes(2000)),
        ]:
            await t.on_msg(Msg(data))
        await t.on_msg(Msg(wire.encode(good)))
        assert await recv(kernel) == bytes(12) + good
        await t.stop()
        assert c.tap_tx_frames == 1 and c.tap_tx_bytes == len(good)
        assert c.snapshot()["drops"] == {
            "empty": 1,
            "short": 1,
            "runt": 1,
            "dup_mac": 1,
            "not_for_us": 1,
            "version": 1,
            "oversize": 1,
        }

    run(body())


def test_mtu_change_raises_the_limit(backend, fake_tap):
    async def body():
        t, link, c, kernel = await make(fake_tap)
        jumbo = frame(ME, PEER, 8986)
        await t.on_msg(Msg(wire.encode(jumbo)))
        t.set_mtu(9000)
        await t.on_msg(Msg(wire.encode(jumbo)))
        assert await recv(kernel) == bytes(12) + jumbo
        await t.stop()
        assert c.drops[DropReason.OVERSIZE] == 1  # before the change

    run(body())


def test_disconnected_frames_are_counted_drops(backend, fake_tap):
    async def body():
        t, link, c, kernel = await make(fake_tap)
        link.connected = False
        link.checked.clear()
        for _ in range(3):
            kernel.send(bytes(12) + frame(PEER, ME))
        while c.tap_rx_frames < 3:
            await asyncio.wait_for(link.checked.wait(), 2)  # a batch was handled
            link.checked.clear()
        await t.stop()
        assert link.nc.published == []
        assert c.snapshot()["drops"] == {"disconnected": 3}

    run(body())


@pytest.mark.parametrize("n", [1, 200])
def test_many_messages_in_one_turn_are_all_written(backend, fake_tap, n):
    async def body():
        t, link, c, kernel = await make(fake_tap)
        for i in range(n):
            await t.on_msg(Msg(wire.encode(frame(ME, PEER, 46 + i % 7))))
        got = [await recv(kernel) for _ in range(n)]
        await t.stop()
        assert len(got) == n and c.tap_tx_frames == n

    run(body())


def test_known_destinations_are_not_flooded(backend, fake_tap):
    async def body():
        t, link, c, kernel = await make(fake_tap)
        await t.on_msg(Msg(wire.encode(frame(ME, PEER))))  # PEER is now known
        kernel.send(bytes(12) + frame(PEER, ME))
        await published(link, 1)
        got = await nothing_more(t, link, kernel, 1)
        await t.stop()
        assert [s for s, _ in got] == ["vlan.0.u.020000000002"] and c.flooded == 0

    run(body())


def test_storm_control_caps_broadcast_not_unicast(backend, fake_tap):
    async def body():
        from vlan_nats.core.switching import TokenBucket

        t, link, c, kernel = await make(fake_tap, storm=TokenBucket(rate=1, burst=5))
        await t.on_msg(Msg(wire.encode(frame(ME, PEER))))  # PEER known: no flood copies
        for _ in range(20):
            kernel.send(bytes(12) + frame(BCAST, ME))
        for _ in range(20):
            kernel.send(bytes(12) + frame(PEER, ME))
        await published(link, 25)
        got = await nothing_more(t, link, kernel, 25)
        await t.stop()
        assert sum(s == "vlan.0.b" for s, _ in got) == 5
        assert sum(s == "vlan.0.u.020000000002" for s, _ in got) == 20
        assert c.drops[DropReason.STORM] == 15

    run(body())


def test_bridge_learns_and_reports(backend, fake_tap):
    behind = bytes.fromhex("020000000033")

    async def body():
        calls = []
        t, link, c, kernel = await make(fake_tap, bridge=True, on_events=lambda: calls.append(1))
        kernel.send(bytes(12) + frame(BCAST, behind))
        await published(link, 1)
        assert calls and t.forwarder.events == [(Event.NEW_LOCAL, behind)]
        t.forwarder.events.clear()
        # Unicast from the network to the host behind us is accepted...
        await t.on_msg(Msg(wire.encode(frame(behind, PEER)), "vlan.0.u.020000000033"))
        assert await recv(kernel) == bytes(12) + frame(behind, PEER)
        # ... its flooded copy is not (it reaches us on its own subject).
        await t.on_msg(Msg(wire.encode(frame(behind, PEER)), "vlan.0.f"))
        await t.stop()
        assert c.drops[DropReason.FLOOD_DUP] == 1

    run(body())


def test_permission_errors_name_the_subject():
    from vlan_nats.aio.natslink import _PERMISSION_RE

    m = _PERMISSION_RE.search(
        'nats: Permissions Violation for Subscription to "vlan.0.u.02005e100002"'
    )
    assert m and m.groups() == ("Subscription", "vlan.0.u.02005e100002")
    m = _PERMISSION_RE.search("nats: permissions violation for publish to vlan.7.b")
    assert m and m.groups() == ("publish", "vlan.7.b")
