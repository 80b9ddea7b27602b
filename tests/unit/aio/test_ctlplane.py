"""The control-plane responder and node lookup, with a fake client."""

import asyncio
import json
from dataclasses import dataclass

from vlan_nats.aio.ctlplane import ControlResponder, find_node, peers_subject, ping_subject
from vlan_nats.core.control import NodeInfo
from vlan_nats.core.subjects import SubjectScheme

SCHEME = SubjectScheme("vlan", "7")


def info(node_id="0a0b0c0d", host="vm1", mac="02:00:00:00:00:01", dev="vnats7"):
    return NodeInfo(node_id, host, dev, [mac], "7", "native", "0.1.0", 1.0, "-", {})


@dataclass
class Msg:
    data: bytes
    reply: str = "_INBOX.x"


class FakeNC:
    def __init__(self):
        self.subs, self.published = {}, []

    async def subscribe(self, subject, cb=None):
        self.subs[subject] = cb

    async def publish(self, subject, data):
        self.published.append((subject, data))


def test_find_node_by_id_mac_or_hostname():
    a, b, c = (
        info("0a0b0c0d", "vm1"),
        info("1a1b1c1d", "vm2", "02:00:00:00:00:02"),
        info("2a2b2c2d", "vm2", "02:00:00:00:00:03", "lab0"),
    )
    peers = [a, b, c]
    assert find_node(peers, "1A1B1C1D") == (b, 0)  # the id peers prints
    assert find_node(peers, "02:00:00:00:00:03") == (c, 0)
    assert find_node(peers, "VM2") == (b, 1)  # two on that host: the first, and one other
    assert find_node(peers, "nobody") == (None, 0)


def test_responder_answers_peers_and_its_own_ping_only():
    nc = FakeNC()
    r = ControlResponder(SCHEME, "0a0b0c0d", info)

    async def body():
        await r.start(nc)
        assert set(nc.subs) == {peers_subject(SCHEME), ping_subject(SCHEME, "0a0b0c0d")}
        await nc.subs[peers_subject(SCHEME)](Msg(b"{}"))
        await nc.subs[ping_subject(SCHEME, "0a0b0c0d")](Msg(b'{"token": "t1"}'))
        # No reply subject, not JSON, not an object, too large: no answer.
        for bad in (Msg(b"{}", reply=""), Msg(b"nope"), Msg(b"[1]"), Msg(b" " * 5000)):
            await nc.subs[peers_subject(SCHEME)](bad)

    asyncio.run(body())
    assert len(nc.published) == 2
    assert NodeInfo.decode(nc.published[0][1]) == info()
    assert json.loads(nc.published[1][1]) == {"pong": "0a0b0c0d", "token": "t1"}


def test_responder_is_rate_limited():
    nc = FakeNC()
    r = ControlResponder(SCHEME, "0a0b0c0d", info)

    async def body():
        await r.start(nc)
        for _ in range(200):
            await nc.subs[peers_subject(SCHEME)](Msg(b"{}"))

    asyncio.run(body())
    assert 40 <= len(nc.published) <= 60  # a burst of REQUESTS_PER_S, then refused
