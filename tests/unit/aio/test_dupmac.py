"""Duplicate-MAC detection: said, rate-limited, shown, forgotten."""

import asyncio
import logging

from vlan_nats.aio import dupmac
from vlan_nats.aio.dupmac import DuplicateMac
from vlan_nats.core.control import NodeInfo

ME = bytes.fromhex("025e00000042")


def other(node_id="1a1b1c1d", mac="02:5e:00:00:00:42"):
    return NodeInfo(node_id, "vm2", "vnats7", [mac], "7", "native", "0", 1.0, "-", {}, "h3")


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_seen_warns_naming_the_other_node_at_most_every_30_s(caplog, monkeypatch):
    monkeypatch.setattr(dupmac, "RETRY_AFTER", 0.0)
    clock = Clock()
    asked = []

    async def lookup(timeout):
        asked.append(timeout)
        return [other(), other("0a0b0c0d", "02:00:00:00:00:09")]

    async def body():
        d = DuplicateMac(lambda: ME, "0a0b0c0d", lookup, clock)
        for _ in range(5):
            d.seen("vlan.7.b")
            await asyncio.sleep(0)
        await d._task
        clock.t += 31
        d.seen("vlan.7.b")
        await d._task
        return d

    with caplog.at_level(logging.WARNING, logger="vlan_nats.aio.dupmac"):
        d = asyncio.run(body())
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and len(asked) == 2
    assert "mac=02:5e:00:00:00:42" in warned[0] and "node=1a1b1c1d host=vm2" in warned[0]
    assert "netns=h3" in warned[0]
    st = d.status()
    assert st["frames"] == 6 and [o["node_id"] for o in st["others"]] == ["1a1b1c1d"]
    clock.t += dupmac.FORGET_AFTER + 1
    assert d.status() is None


def test_a_late_answer_is_retried_and_named(caplog, monkeypatch):
    monkeypatch.setattr(dupmac, "RETRY_AFTER", 0.0)
    answers = [[], [], [other()]]  # the other node is still starting

    async def lookup(timeout):
        return answers.pop(0)

    async def body():
        d = DuplicateMac(lambda: ME, "0a0b0c0d", lookup, Clock())
        d.seen("vlan.7.b")
        await d._task

    with caplog.at_level(logging.WARNING, logger="vlan_nats.aio.dupmac"):
        asyncio.run(body())
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and "unknown" in msgs[0] and "node=1a1b1c1d" in msgs[1]


def test_start_up_check_is_an_error_and_a_mac_change_resets(caplog):
    mac = [ME]

    async def lookup(timeout):
        return [other()]

    async def body():
        d = DuplicateMac(lambda: mac[0], "0a0b0c0d", lookup, Clock())
        await d.check_at_start()
        return d

    with caplog.at_level(logging.WARNING, logger="vlan_nats.aio.dupmac"):
        d = asyncio.run(body())
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert d.status()["others"][0]["node_id"] == "1a1b1c1d"
    mac[0] = bytes.fromhex("025e00000043")  # ip link set address ...
    assert d.status() is None
