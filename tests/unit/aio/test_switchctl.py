"""Subscriptions follow the MAC, the groups and what bridge mode learns."""

import asyncio

from vlan_nats.aio.switchctl import Subscriptions, SwitchEvents
from vlan_nats.core.counters import Counters
from vlan_nats.core.forwarding import Forwarder
from vlan_nats.core.subjects import SubjectScheme
from vlan_nats.core.switching import MacTable

ME, HOST = bytes.fromhex("020000000001"), bytes.fromhex("020000000077")


class FakeLink:
    def __init__(self):
        self.wanted, self.added = frozenset(), []

    async def set_subjects(self, wanted):
        self.wanted = wanted

    async def add_subject(self, subject):
        self.added.append(subject)


def test_native_subjects_and_a_learned_host_in_bridge_mode():
    link = FakeLink()
    scheme = SubjectScheme("vlan", "0")

    async def body():
        subs = Subscriptions(link, scheme, Forwarder(ME))
        subs.groups = frozenset({bytes.fromhex("333300000001")})
        await subs.sync()
        native = link.wanted
        fwd = Forwarder(ME, MacTable(300, 10), bridge=True)
        bsubs = Subscriptions(link, scheme, fwd)
        events = SwitchEvents(bsubs, Counters(), 10, "br0")
        fwd.learn_local(HOST, 1.0)
        events.on_events()
        await events._resync
        await bsubs.add_local(HOST)
        return native, link.wanted

    native, bridged = asyncio.run(body())
    assert scheme.unicast(ME) in native and "vlan.0.m.333300000001" in native
    assert scheme.unicast(HOST) in bridged and scheme.flood in bridged
    assert link.added == [scheme.unicast(HOST)]


def test_a_full_table_is_counted_not_resubscribed():
    link = FakeLink()
    fwd = Forwarder(ME, MacTable(300, 1), bridge=True)  # room for our own MAC only
    c = Counters()
    events = SwitchEvents(Subscriptions(link, SubjectScheme("vlan", "0"), fwd), c, 1, "br0")
    fwd.learn_local(HOST, 1.0)
    events.on_events()
    assert c.macs_over_cap == 1 and events._resync is None and fwd.events == []
