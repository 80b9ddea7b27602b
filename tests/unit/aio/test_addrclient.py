"""``up --address auto`` (aio/addrclient.py) against a scripted address
service: obtain, renew, keep while unanswered, lose at expiry, a device that
refuses the address, release."""

import asyncio
from types import SimpleNamespace

import nats
import pytest

from vlan_nats.aio.addrclient import AddressClient
from vlan_nats.core import ipam
from vlan_nats.core.subjects import SubjectScheme
from vlan_nats.errors import LinkError

GRANT = b'{"ok": true, "address": "198.18.5.3/24", "lease": 100, "expires": 0}'


class Stop(Exception):
    pass


class Service:
    """The NATS client the daemon's link holds: answers from a script."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.asked = []

    async def request(self, subject, payload, timeout):
        self.asked.append(ipam.parse(payload).op)
        answer = self.answers.pop(0) if self.answers else GRANT
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(data=answer)


def client(answers, refuse_add=0):
    clock = SimpleNamespace(t=0.0)
    device: list[str] = []
    sleeps: list[float] = []
    service = Service(answers)
    refusals = [refuse_add]

    async def add(cidr):
        if refusals[0]:
            refusals[0] -= 1
            raise LinkError(17, "refused")
        if cidr not in device:  # as add_address: one already there is no error
            device.append(cidr)

    async def remove(cidr):
        device.remove(cidr)

    async def sleep(s):
        sleeps.append(s)
        clock.t += s
        if len(sleeps) > c.max_turns:
            raise Stop

    link = SimpleNamespace(nc=service, is_connected=True)
    c = AddressClient(link, SubjectScheme("vlan", "7"), lambda: bytes.fromhex("020000000001"),
                      "0123abcd", add, remove, clock=lambda: clock.t, sleep=sleep)  # fmt: skip
    c.max_turns = 0
    return c, service, device, sleeps


def run(c, turns):
    c.max_turns = turns
    with pytest.raises(Stop):
        asyncio.run(c.run())


def test_obtains_renews_at_half_the_lease_and_releases():
    c, service, device, sleeps = client([])
    run(c, 2)
    assert device == ["198.18.5.3/24"] and c.problem is None
    assert sleeps[:2] == [50.0, 50.0] and service.asked[:3] == ["request", "renew", "renew"]
    assert c.describe()[0]["address"] == "198.18.5.3/24"
    asyncio.run(c.release())
    assert service.asked[-1] == "release" and c.held is None


def test_keeps_the_address_while_unanswered_then_loses_it_at_expiry():
    silent = nats.errors.NoRespondersError()
    c, service, device, _ = client([GRANT] + [silent] * 30)
    run(c, 25)
    assert device == []  # 100 s lease ran out with no answer: removed
    assert "no address service instance is running" in c.problem
    assert c.held is None and service.asked[-1] == "request"


def test_an_exhausted_pool_is_the_problem():
    c, _, device, sleeps = client([ipam.refuse("address pool 198.18.5.0/24 exhausted")] * 5)
    run(c, 3)
    assert device == [] and "exhausted" in c.problem
    assert sleeps == [1.0, 2.0, 4.0, 8.0]  # backing off


def test_a_device_that_refuses_the_address_is_a_problem_until_it_takes_it():
    c, _, device, _ = client([], refuse_add=1)
    run(c, 0)
    assert device == [] and "cannot add the leased address" in c.problem
    run(c, 1)  # the renewal adds it
    assert device == ["198.18.5.3/24"] and c.problem is None


def test_an_address_deleted_by_hand_comes_back_at_renewal():
    c, _, device, _ = client([])
    run(c, 0)
    device.clear()  # ip addr del
    run(c, 1)
    assert device == ["198.18.5.3/24"]
