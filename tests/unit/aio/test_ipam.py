"""The address service's handling (aio/ipam.py) over an in-memory KV that
keeps revisions as JetStream's does: sticky leases, takeover of expired
ones, a race lost to another instance, release, exhaustion."""

import asyncio
from types import SimpleNamespace

import nats.js.errors as jserr

from vlan_nats.aio.ipam import IpamService
from vlan_nats.core import ipam
from vlan_nats.core.subjects import SubjectScheme

MAC1, MAC2, MAC3 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"


class FakeKV:
    def __init__(self):
        self.data: dict[str, tuple[bytes, int]] = {}
        self.rev = 0
        self.ops = 0
        self.before_write = None  # a hook: another instance writes first

    async def get(self, key):
        self.ops += 1
        if key not in self.data:
            raise jserr.KeyNotFoundError()
        value, rev = self.data[key]
        return SimpleNamespace(value=value, revision=rev)

    async def keys(self):
        if not self.data:
            raise jserr.NoKeysError()
        return list(self.data)

    def _set(self, key, value):
        self.rev += 1
        self.data[key] = (value, self.rev)

    async def create(self, key, value):
        await self._hook(key)
        if key in self.data:
            raise jserr.KeyWrongLastSequenceError()
        self._set(key, value)

    async def update(self, key, value, last):
        await self._hook(key)
        if key not in self.data or self.data[key][1] != last:
            raise jserr.KeyWrongLastSequenceError()
        self._set(key, value)

    async def put(self, key, value):
        self._set(key, value)

    async def delete(self, key, last=None):
        if key not in self.data or (last is not None and self.data[key][1] != last):
            raise jserr.KeyWrongLastSequenceError()
        del self.data[key]

    async def _hook(self, key):
        if self.before_write is not None and key.startswith("addr."):
            hook, self.before_write = self.before_write, None
            await hook(key)


def service(pool="198.18.5.0/29", now=1000.0, static=None, members=None):
    """``static``: address -> the Claim of a node that holds it (ip addr);
    ``members``: the MACs that are live members (None: every one)."""
    clock = SimpleNamespace(t=now)
    held = static or {}

    async def holders(address):
        return [held[address]] if address in held else []

    async def member(mac):
        return members is None or mac in members

    svc = IpamService(None, SubjectScheme("vlan", "7"), ipam.Pool.parse(pool), lease=60,
                      clock=lambda: clock.t, holders=holders, member=member)  # fmt: skip
    svc._kv = FakeKV()
    return svc, clock


def ask(svc, op, mac, address=None):
    req = ipam.parse(ipam.request(op, mac, "0123abcd", "h", address))
    assert not isinstance(req, str), req
    return ipam.parse_reply(asyncio.run(svc.handle(req)))


def test_sticky_renew_release_and_back():
    svc, _ = service()
    first = ask(svc, "request", MAC1)
    assert first.ok and first.address.endswith("/29")
    addr = first.address.split("/")[0]
    assert ask(svc, "request", MAC1).address == first.address  # asked again: the same
    assert ask(svc, "renew", MAC1, addr).address == first.address
    assert svc.counters["renewed"] == 1
    assert ask(svc, "release", MAC1, addr).ok
    assert ipam.address_key(addr) not in svc._kv.data
    assert ask(svc, "request", MAC1).address == first.address  # remembered per MAC


def test_others_get_other_addresses_until_exhausted():
    svc, _ = service("198.18.5.0/30")  # two addresses
    a, b = ask(svc, "request", MAC1), ask(svc, "request", MAC2)
    assert a.ok and b.ok and a.address != b.address
    full = ask(svc, "request", MAC3)
    assert not full.ok and "exhausted" in full.error
    assert svc.counters["exhausted"] == 1
    assert not ask(svc, "release", MAC3, a.address.split("/")[0]).ok  # not its lease


def test_an_expired_lease_is_taken_over_and_its_renewal_refused():
    svc, clock = service("198.18.5.0/30")
    a = ask(svc, "request", MAC1)
    b = ask(svc, "request", MAC2)
    clock.t += 61  # both leases ran out; MAC2 renews in time, MAC1 does not
    assert ask(svc, "renew", MAC2, b.address.split("/")[0]).address == b.address
    c = ask(svc, "request", MAC3)
    assert c.ok and c.address == a.address
    # MAC1 comes back: its address is MAC3's now, and no other is free.
    late = ask(svc, "renew", MAC1, a.address.split("/")[0])
    assert not late.ok and "exhausted" in late.error


def test_a_race_lost_to_another_instance_moves_on():
    svc, _ = service()
    kv = svc._kv

    async def other_instance_first(key):
        kv._set(key, ipam.Lease(key[5:], MAC2, "99999999", "", 2000.0).encode())

    kv.before_write = other_instance_first
    got = ask(svc, "request", MAC1)
    assert got.ok and svc.counters["conflicts"] == 1
    owners = {ipam.Lease.decode(v).mac for k, (v, _) in kv.data.items() if k.startswith("addr.")}
    assert owners == {MAC1, MAC2}  # never one address twice


def test_a_request_in_a_sparse_pool_reads_few_keys():
    svc, _ = service("198.18.0.0/16")
    for i in range(50):
        ask(svc, "request", f"02:00:00:00:01:{i:02x}")
    before = svc._kv.ops
    ask(svc, "request", MAC3)
    assert svc._kv.ops - before <= 4  # not one per lease


def test_an_address_a_node_holds_statically_is_never_leased():
    from vlan_nats.core.addrclaim import Claim

    probe, _ = service("198.18.5.0/29")
    first = ask(probe, "request", MAC1).address.split("/")[0]  # where MAC1 would land
    owner = Claim("0a0b0c0d", "h9", "vnats7", None, MAC2, first, "static")
    svc, _ = service("198.18.5.0/29", static={first: owner})
    got = ask(svc, "request", MAC1)
    assert got.ok and got.address.split("/")[0] != first
    assert svc.counters["held"] == 1
    # The holder itself may have it (it answers for its own address).
    mine = Claim("0a0b0c0d", "h1", "vnats7", None, MAC1, first, "static")
    svc2, _ = service("198.18.5.0/29", static={first: mine})
    assert ask(svc2, "request", MAC1).address.split("/")[0] == first


def test_made_up_macs_cannot_empty_the_pool():
    """New leases go to live members only: a thousand made-up MACs get
    nothing and are counted; a member still gets its address, and a
    member's lease is renewed."""
    svc, clock = service(members={MAC1, MAC2})
    for i in range(1000):
        r = ask(svc, "request", f"02:00:00:01:{i >> 8:02x}:{i & 255:02x}")
        assert not r.ok and "not a live member of network 7" in r.error, r
    assert svc.counters["not_member"] == 1000 and svc.counters["granted"] == 0
    first = ask(svc, "request", MAC1)
    assert first.ok and ask(svc, "request", MAC2).ok
    assert ask(svc, "renew", MAC1, first.address.split("/")[0]).ok
