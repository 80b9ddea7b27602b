"""The address service's pure rules (core/ipam.py)."""

import pytest

from vlan_nats.core import ipam


def test_pool_hosts_range_and_exclusions():
    p = ipam.Pool.parse("198.18.5.0/24")
    assert (str(p.first), str(p.last), p.size) == ("198.18.5.1", "198.18.5.254", 254)
    p = ipam.Pool.parse("198.18.5.0/24", "198.18.5.10-198.18.5.12", ("198.18.5.11",))
    assert p.size == 2
    assert list(p.candidates(1)) == ["198.18.5.12", "198.18.5.10"]
    assert p.allows("198.18.5.10") and not p.allows("198.18.5.11") and not p.allows("x")
    assert p.with_prefix("198.18.5.10") == "198.18.5.10/24"


@pytest.mark.parametrize(
    ("cidr", "span", "why"),
    [
        ("nonsense", None, "expected an IPv4 CIDR"),
        ("198.18.5.1", None, "give a prefix length"),
        ("198.18.5.0/24", "198.18.5.20-198.18.5.10", "not an ordered range"),
        ("198.18.5.0/24", "198.18.6.1-198.18.6.2", "not an ordered range"),
        ("198.18.5.0/24", "1-2", "expected FIRST-LAST"),
    ],
)
def test_bad_pools_say_why(cidr, span, why):
    with pytest.raises(ipam.PoolError, match=why):
        ipam.Pool.parse(cidr, span)


def test_requests_are_validated():
    good = ipam.request("request", "02:00:00:00:00:01", "0123abcd", "h1")
    assert ipam.parse(good) == ipam.Request("request", "02:00:00:00:00:01", "0123abcd", "h1", None)
    assert ipam.parse(b"x" * 2000) == "oversized"
    assert ipam.parse(b"[1]") == "not a JSON object"
    assert ipam.parse(b'{"op":"steal"}') == "bad op"
    assert ipam.parse(ipam.request("request", "ff:ff:ff:ff:ff:ff", "0123abcd", "h")) == "bad mac"
    assert ipam.parse(ipam.request("request", "02:00:00:00:00:01", "NODE", "h")) == "bad node"
    assert ipam.parse(ipam.request("renew", "02:00:00:00:00:01", "0123abcd", "h")) == "bad address"
    assert ipam.parse(ipam.request("renew", "02:00:00:00:00:01", "0123abcd", "h", "1.2.3")) == (
        "bad address"
    )


def test_choices_are_sticky_then_free():
    p = ipam.Pool.parse("198.18.5.0/29")  # .1-.6
    mine = ipam.Lease("198.18.5.4", "02:00:00:00:00:01", "0123abcd", "h", expires=50.0)
    other = ipam.Lease("198.18.5.2", "02:00:00:00:00:02", "0123abce", "g", expires=500.0)
    gone = ipam.Lease("198.18.5.3", "02:00:00:00:00:03", "0123abcf", "f", expires=10.0)
    leases = {le.address: le for le in (mine, other, gone)}
    order = list(ipam.choices(p, leases, "02:00:00:00:00:01", now=100.0))
    assert order[0] == "198.18.5.4"  # its own, even though expired
    assert "198.18.5.2" not in order  # another MAC's live lease
    assert "198.18.5.3" in order  # an expired lease of another MAC is free
    assert sorted(order) == ["198.18.5.1", "198.18.5.3", "198.18.5.4", "198.18.5.5", "198.18.5.6"]


def test_lease_and_reply_round_trip():
    le = ipam.Lease("198.18.5.4", "02:00:00:00:00:01", "0123abcd", "h", 123.5)
    assert ipam.Lease.decode(le.encode()) == le
    assert ipam.Lease.decode(b"{}") is None
    p = ipam.Pool.parse("198.18.5.0/24")
    r = ipam.parse_reply(ipam.grant(p, le, 60))
    assert r == ipam.Reply(True, "198.18.5.4/24", 60.0, "")
    assert ipam.parse_reply(ipam.refuse("full")) == ipam.Reply(False, "", 0.0, "full")
    assert ipam.parse_reply(ipam.RELEASED).ok
    assert ipam.parse_reply(b"garbage") is None
