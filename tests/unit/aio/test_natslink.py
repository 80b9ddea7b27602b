"""The NATS connection's bookkeeping, with a fake client: subscriptions
reconciled, errors described, refusals said once."""

import asyncio
import logging
import ssl

import nats
import pytest

from vlan_nats.aio.natslink import NatsLink, describe_error, is_auth_error
from vlan_nats.core.counters import Counters, DropReason


class FakeSub:
    def __init__(self, client, subject):
        self.client, self.subject = client, subject

    async def unsubscribe(self):
        self.client.unsubscribed.append(self.subject)


class FakeClient:
    is_connected = True
    connected_url = None

    def __init__(self):
        self.subscribed, self.unsubscribed = [], []

    async def subscribe(self, subject, cb=None, **kw):
        await asyncio.sleep(0)  # a real subscribe may suspend
        self.subscribed.append(subject)
        return FakeSub(self, subject)

    async def flush(self, timeout=None):
        pass


def link_with_fake():
    link = NatsLink(("nats://127.0.0.1:4222",), "test", Counters(), inbox_prefix="_INBOX.0200")
    link.nc = FakeClient()
    return link


@pytest.mark.parametrize(
    "error, text",
    [
        (nats.errors.AuthorizationError(), "authorization violation"),
        (nats.errors.Error("nats: 'Authorization Violation'"), "authorization violation"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset by peer"),
        (TimeoutError(), "timeout"),
        (ssl.SSLError(1, "[SSL] wrong version number"), "tls: [ssl] wrong version number"),
    ],
)
def test_errors_are_described_in_a_few_stable_words(error, text):
    assert describe_error(error) == text


def test_auth_error_is_said_once_and_outlives_the_reset_after_it(caplog):
    link = link_with_fake()
    refused = nats.errors.Error("nats: 'Authorization Violation'")

    async def body():
        for _ in range(3):
            await link._error_cb(refused)
            await link._error_cb(ConnectionResetError(104, "Connection reset by peer"))

    with caplog.at_level(logging.WARNING, logger="vlan_nats.aio.natslink"):
        asyncio.run(body())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "nats refused our credentials" in errors[0].getMessage()
    assert link.last_error == "authorization violation" and is_auth_error(link.last_error)

    async def refused_then_down():
        await link._error_cb(ConnectionRefusedError(111, "Connection refused"))

    asyncio.run(refused_then_down())
    assert link.last_error == "connection refused"  # news: the server is gone


def test_refused_inbox_is_said_once_and_remembered(caplog):
    link = link_with_fake()
    e = nats.errors.Error('nats: permissions violation for subscription to "_inbox.0200.abc"')

    async def body():
        await link._error_cb(e)
        await link._error_cb(e)

    with caplog.at_level(logging.WARNING, logger="vlan_nats.aio.natslink"):
        asyncio.run(body())
    said = [r for r in caplog.records if "reply inbox" in r.getMessage()]
    assert len(said) == 1 and link.inbox_refused


def test_slow_consumer_is_a_counted_drop():
    link = link_with_fake()
    asyncio.run(link._error_cb(nats.errors.SlowConsumerError("x", 1, None, None)))
    assert link.counters.drops[DropReason.SLOW_CONSUMER] == 1


def test_subjects_are_reconciled_without_doubles():
    link = link_with_fake()
    nc = link.nc

    async def body():
        await link.set_subjects(frozenset({"a", "b"}))
        assert sorted(nc.subscribed) == ["a", "b"]
        # add_subject while a sync subscribes the same subject: one subscription
        await asyncio.gather(link.set_subjects(frozenset({"b", "c"})), link.add_subject("c"))
        assert nc.unsubscribed == ["a"] and sorted(nc.subscribed) == ["a", "b", "c"]
        assert link.subjects == frozenset({"b", "c"})

    asyncio.run(body())


def test_subjects_wanted_while_disconnected_wait_for_the_reconnect():
    link = link_with_fake()
    link.nc.is_connected = False
    asyncio.run(link.set_subjects(frozenset({"a"})))
    assert link.nc.subscribed == [] and link.subjects == frozenset()
    link.nc.is_connected = True
    asyncio.run(link._reconnected_cb())
    assert link.nc.subscribed == ["a"] and link.counters.nats_reconnects == 1
