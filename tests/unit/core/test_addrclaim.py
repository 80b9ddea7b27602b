"""Duplicate IPv4 addresses: claims and the conflict table (pure)."""

from vlan_nats.core import addrclaim
from vlan_nats.core.addrclaim import Claim, Conflicts, claim_subject, ipv4_of
from vlan_nats.core.subjects import SubjectScheme

A = Claim("0a0b0c0d", "h1", "vnats7", "ns1", "02:00:00:00:00:01", "198.18.0.2")
B = Claim("1a1b1c1d", "h2", "vnats7", None, "02:00:00:00:00:02", "198.18.0.2", "ipam")


def test_subject_and_ipv4_only():
    assert claim_subject(SubjectScheme("vlan", "7"), "198.18.0.2") == "vlan.7.ctl.addr.c6120002"
    assert ipv4_of(("198.18.0.2/24", "fe80::1/64", "198.18.0.2/16", "198.18.1.1/24")) == [
        "198.18.0.2",
        "198.18.1.1",
    ]


def test_claims_round_trip_and_junk_is_refused():
    assert Claim.decode(A.encode()) == A and Claim.decode(B.encode()) == B
    for junk in (b"", b"[]", b"{}", b"x" * 2000, A.encode().replace(b"0a0b0c0d", b"ZZ"),
                 A.encode().replace(b"198.18.0.2", b"300.1.1.1")):  # fmt: skip
        assert Claim.decode(junk) is None
    assert "host=h1 netns=ns1 dev=vnats7 mac=02:00:00:00:00:01" in A.describe()


def test_conflicts_are_news_once_cleared_by_a_probe_and_forgotten_later():
    c = Conflicts()
    assert c.heard(B, 0.0) and not c.heard(B, 1.0)  # said once
    assert [x.node_id for x in c.current(1.0)] == [B.node_id]
    assert c.status(3.0)[0]["last_seen_s_ago"] == 2.0
    assert c.probed("198.18.0.2", [], 5.0) == [] and c.current(5.0) == []  # nobody answered
    assert c.probed("198.18.0.2", [B], 6.0) == [B]
    assert c.current(6.0 + addrclaim.FORGET_AFTER + 1) == []  # not heard again: forgotten
    c.heard(B, 10.0)
    c.keep_only(["198.18.0.9"])  # we no longer hold .2
    assert c.current(10.0) == []
