"""The control-plane responder and node lookup, with a fake client."""

import asyncio
import json
from dataclasses import dataclass

from nats.nuid import NUID

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
    subject: str = ""
    headers: dict | None = None
    _client: object = None

    async def respond(self, data):
        await self._client.publish(self.reply, data)


class FakeNC:
    """What nats.micro uses of a client (its services are ours: services.py)."""

    def __init__(self):
        self.subs, self.queues, self.published = {}, {}, []
        self._nuid = NUID()

    async def subscribe(self, subject, queue="", cb=None):
        self.subs[subject], self.queues[subject] = cb, queue

    async def publish(self, subject, data, headers=None):
        self.published.append((subject, data))

    async def flush(self):
        pass

    def msg(self, subject, data=b"{}", reply="_INBOX.x"):
        return self.subs[subject](Msg(data, reply, subject, None, self))


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
        ours = {peers_subject(SCHEME), ping_subject(SCHEME, "0a0b0c0d")}
        assert ours < set(nc.subs)  # and the $SRV subjects of the service
        assert {s for s in nc.subs if s.startswith("$SRV.")} == {
            f"$SRV.{verb}{tail}" for verb in ("PING", "INFO", "STATS")
            for tail in ("", ".vlan-nats-node", f".vlan-nats-node.{r.service.id}")
        }  # fmt: skip
        # Every node answers peers: a queue group of its own is no queue group.
        assert nc.queues[peers_subject(SCHEME)] == r.service.id
        await nc.msg(peers_subject(SCHEME))
        await nc.msg(ping_subject(SCHEME, "0a0b0c0d"), b'{"token": "t1"}')
        # No reply subject, not JSON, not an object, too large: no answer.
        for data, reply in ((b"{}", ""), (b"nope", "r"), (b"[1]", "r"), (b" " * 5000, "r")):
            await nc.msg(peers_subject(SCHEME), data, reply)
        await nc.msg(f"$SRV.STATS.vlan-nats-node.{r.service.id}")

    asyncio.run(body())
    assert len(nc.published) == 3
    assert NodeInfo.decode(nc.published[0][1]) == info()
    assert json.loads(nc.published[1][1]) == {"pong": "0a0b0c0d", "token": "t1"}
    stats = json.loads(nc.published[2][1])
    assert stats["type"] == "io.nats.micro.v1.stats_response"
    assert stats["metadata"] == {"node_id": "0a0b0c0d", "network": "7"}
    peers, ping = stats["endpoints"]
    assert (peers["name"], peers["num_requests"], peers["num_errors"]) == ("peers", 5, 0)
    assert peers["data"]["mtu"] is None and ping["data"] is None


def test_responder_is_rate_limited():
    nc = FakeNC()
    r = ControlResponder(SCHEME, "0a0b0c0d", info)

    async def body():
        await r.start(nc)
        for _ in range(200):
            await nc.msg(peers_subject(SCHEME))

    asyncio.run(body())
    assert 40 <= len(nc.published) <= 60  # a burst of REQUESTS_PER_S, then refused
