"""The control-plane responder and node lookup, with a fake client."""

import asyncio
import json
from dataclasses import dataclass

from vlan_nats.aio.ctlplane import (
    ControlResponder,
    describe_node,
    find_nodes,
    peers_subject,
    ping_subject,
)
from vlan_nats.core.control import NodeInfo
from vlan_nats.core.subjects import SubjectScheme

SCHEME = SubjectScheme("vlan", "7")


def info(node_id="0a0b0c0d", host="vm1", mac="02:00:00:00:00:01", dev="vnats7", addrs=()):
    return NodeInfo(
        node_id, host, dev, [mac], "7", "native", "0.1.0", 1.0, "-", {}, addresses=list(addrs)
    )


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


def test_find_nodes_by_id_mac_address_or_hostname():
    a, b, c = (
        info("0a0b0c0d", "vm1", addrs=["198.18.100.1/24"]),
        info("1a1b1c1d", "vm2", "02:00:00:00:00:02", addrs=["198.18.100.2/24", "fd00::2/64"]),
        info("2a2b2c2d", "vm2", "02:00:00:00:00:03", "lab0"),
    )
    peers = [a, b, c]
    assert find_nodes(peers, "1A1B1C1D") == [b]  # the id peers prints
    assert find_nodes(peers, "02:00:00:00:00:03") == [c]
    assert find_nodes(peers, "198.18.100.2") == [b]  # an address, with or without prefix
    assert find_nodes(peers, "198.18.100.1/24") == [a]
    assert find_nodes(peers, "FD00::2") == [b]
    assert find_nodes(peers, "VM2") == [b, c]  # ambiguous: both, for the caller to list
    assert find_nodes(peers, "nobody") == []
    assert describe_node(c) == "vm2/lab0 (2a2b2c2d, 02:00:00:00:00:03)"


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
