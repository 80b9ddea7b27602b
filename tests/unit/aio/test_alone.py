"""A node alone on its network (aio/alone.py), with fakes for the lookup."""

import asyncio

from vlan_nats.aio.alone import Loneliness
from vlan_nats.core.control import NodeInfo


def node(node_id):
    return NodeInfo(
        node_id, "h", "vnats7", ["02:00:00:00:00:01"], "Obs", "native", "0", 1.0, "-", {}
    )


def test_alone_until_another_node_answers():
    answers = [[], [node("0a0b0c0d")], [node("0a0b0c0d"), node("1a1b1c1d")]]
    seen = []

    async def lookup(timeout):
        return answers.pop(0)

    async def body():
        alone = Loneliness("Obs", "0a0b0c0d", lambda: False, lookup, grace=0, recheck=0.01)
        task = asyncio.create_task(alone.run())
        while len(answers) > 1:
            await asyncio.sleep(0.005)
        seen.append(alone.current())
        await task
        seen.append(alone.current())

    asyncio.run(body())
    assert seen[0] and "no other node on network Obs" in seen[0]
    assert seen[1] is None  # another node answered


def test_no_verdict_while_disconnected_and_a_frame_clears_it():
    heard = [False]

    async def lookup(timeout):
        return []

    async def body():
        off = Loneliness("7", "0a0b0c0d", lambda: heard[0], lookup, connected=lambda: False,
                         grace=0, recheck=0.01)  # fmt: skip
        task = asyncio.create_task(off.run())
        await asyncio.sleep(0.05)
        assert off.current() is None  # nobody can answer while NATS is down
        on = Loneliness("7", "0a0b0c0d", lambda: heard[0], lookup, grace=0, recheck=0.01)
        task2 = asyncio.create_task(on.run())
        await asyncio.sleep(0.03)
        assert on.current() is not None
        heard[0] = True  # a frame came from the network
        assert on.current() is None
        await asyncio.wait_for(task2, 1)
        task.cancel()

    asyncio.run(body())
