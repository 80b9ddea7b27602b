"""The C datapath's pure parts against core/: sealing (one set of test
vectors for both implementations), subject spelling, the ingress table,
the ARP parser.  No root, no network."""

import json
import os
from pathlib import Path

import pytest

from vlan_nats import cdatapath
from vlan_nats.core import seal
from vlan_nats.core.counters import Counters, DropReason
from vlan_nats.core.subjects import SubjectScheme
from vlan_nats.crypto import aes_gcm

VECTORS = json.loads((Path(__file__).parent / "data" / "seal_vectors.json").read_text())

if not cdatapath.available():
    if os.environ.get("CI") == "true":
        pytest.fail(f"the C datapath must be built in CI: {cdatapath.why_missing()}")
    pytest.skip(cdatapath.why_missing(), allow_module_level=True)


def c_subject(prefix: str, mac: bytes, go_style: bool) -> str:
    """The subject the C datapath spells for ``mac`` after ``prefix``
    (csrc/vn_testhooks.h)."""
    from vlan_nats._datapath import ffi, lib

    out = ffi.new("char[]", 320)
    assert lib.vn_subject(prefix.encode(), mac, int(go_style), out, 320) >= 0
    return ffi.string(out).decode()


def c_arp_request(frame: bytes):
    """The C parser of ARP requests (csrc/vn_testhooks.h)."""
    from vlan_nats._datapath import ffi, lib

    sender, target = ffi.new("unsigned char[]", 10), ffi.new("unsigned char[]", 4)
    if not lib.vn_arp_request(frame, len(frame), sender, target):
        return None
    return bytes(ffi.buffer(sender, 10)), bytes(ffi.buffer(target, 4))


def py_opener(keys):
    return seal.Opener(keys, aead=aes_gcm)


@pytest.mark.parametrize("case", VECTORS["seal"], ids=lambda c: f"ctr{c['counter']}")
def test_both_seal_the_vectors_alike(case):
    key, session = bytes.fromhex(case["key"]), bytes.fromhex(case["session"])
    plain, sealed = bytes.fromhex(case["plain"]), bytes.fromhex(case["sealed"])
    c = cdatapath.CSealer(key, session)
    c.counter = case["counter"]
    assert c.seal(case["subject"], plain, case["stamp"]) == sealed
    p = seal.Sealer(key, session, lambda: case["stamp"], aead=aes_gcm)
    p.counter = case["counter"]
    assert p.seal(case["subject"], plain) == sealed


@pytest.mark.parametrize("case", VECTORS["seal"], ids=lambda c: f"ctr{c['counter']}")
def test_both_open_the_vectors(case):
    key, sealed = bytes.fromhex(case["key"]), bytes.fromhex(case["sealed"])
    plain, now = bytes.fromhex(case["plain"]), case["stamp"]
    for opener in (cdatapath.COpener([key]), py_opener([key])):
        assert opener.open(sealed, case["subject"], now) == plain
        assert opener.open(sealed, case["subject"], now) is DropReason.REPLAY


@pytest.mark.parametrize("case", VECTORS["refuse"], ids=lambda c: c["why"])
def test_both_refuse_alike(case):
    keys = [bytes.fromhex(k) for k in case.get("keys", [VECTORS["seal"][0]["key"]])]
    sealed, want = bytes.fromhex(case["sealed"]), DropReason[case["reason"]]
    assert cdatapath.COpener(keys).open(sealed, case["subject"], case["now"]) is want
    assert py_opener(keys).open(sealed, case["subject"], case["now"]) is want


def test_replay_window_matches_core():
    """Counters out of order inside the window pass once; older ones do not."""
    key, session = bytes(range(32)), b"w" * 8
    msgs = {}
    s = cdatapath.CSealer(key, session)
    for ctr in (0, 1, 2, 5, 1030, 1100, 3000):
        s.counter = ctr
        msgs[ctr] = s.seal("x.y", b"m", 100)
    order = [5, 2, 5, 1030, 0, 1, 1100, 3000, 1100, 2]
    for opener in (cdatapath.COpener([key]), py_opener([key])):
        got = [opener.open(msgs[c], "x.y", 100) for c in order]
        R = DropReason.REPLAY  # 0 and 1 fall out of the window once 1030 is seen
        assert [g if isinstance(g, DropReason) else "ok" for g in got] == [
            "ok", "ok", R, "ok", R, R, "ok", "ok", R, R,
        ]  # fmt: skip


def test_key_rollover_keeps_sessions_of_kept_keys():
    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    s1 = cdatapath.CSealer(k1, b"a" * 8)
    o = cdatapath.COpener([k1])
    assert o.open(s1.seal("x", b"1", 100), "x", 100) == b"1"
    o.set_keys([k2, k1])
    assert o.sessions == 1
    o.set_keys([k2])
    assert o.sessions == 0
    assert o.open(s1.seal("x", b"2", 100), "x", 100) is DropReason.SEAL_KEY


@pytest.mark.parametrize("compat", [False, True])
def test_subjects_spelled_as_core_routes_them(compat):
    scheme = SubjectScheme("vlan", "7", compat=compat)
    uni, multi, bcast, go = (scheme.unicast_prefix, scheme.multicast_prefix, scheme.broadcast,
                             scheme.compat)  # fmt: skip
    for mac in (bytes.fromhex("020000000001"), bytes.fromhex("0a1b2c3d4e5f")):
        assert c_subject(uni, mac, go) == scheme.route(mac)[0]
    group = bytes.fromhex("333300000001")
    want = scheme.route(group)[0]
    assert (c_subject(multi, group, go) if multi else bcast) == want


def test_a_closed_datapath_reports_instead_of_crashing():
    """Status may be asked for while the daemon tears down."""
    r, w = os.pipe()
    try:
        dp = cdatapath.CDatapath(r, False, 1522)
        dp.close()
        c = Counters()
        dp.read_counters(c)
        assert dp.connected() == (False, "") and dp.error() == ""
        assert dp.remote_count(300.0) == 0 and dp.opener_sessions() == 0
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize(
    "frame",
    [
        bytes.fromhex("ffffffffffff020000000001080600010800060400010200000000"
                      "01c61200010000000000" "00c6120002"),
        bytes.fromhex("ffffffffffff020000000001080600010800060400020200000000"
                      "01c61200010000000000" "00c6120002"),  # a reply
        bytes.fromhex("ffffffffffff0200000000010806000108000604"),  # truncated
        bytes.fromhex("ffffffffffff020000000001080000010800060400010200000000"
                      "01c61200010000000000" "00c6120002"),  # IPv4, not ARP
    ],
)
def test_arp_parser_is_the_cores(frame):
    from vlan_nats.core import arp

    assert c_arp_request(frame) == arp.request(frame, 0)
