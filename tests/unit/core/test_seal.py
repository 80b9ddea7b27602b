"""Sealed envelope: round trip, tampering, replay, clocks, keys, hostile input."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlan_nats.core import seal, wire
from vlan_nats.core.counters import DropReason
from vlan_nats.crypto import aes_gcm

K1 = bytes(range(32))
K2 = bytes(range(1, 33))
SUBJ = "vlan.lab.u.020000000001"
NOW = 1_800_000_000.0
MSG = wire.encode(bytes.fromhex("020000000001020000000002") + b"\x08\x00" + b"payload" * 10)


def sealer(key=K1, session=b"s" * 8, now=NOW):
    return seal.Sealer(key, session, lambda: now, aead=aes_gcm)


def test_round_trip_and_overhead():
    out = sealer().seal(SUBJ, MSG)
    assert len(out) == len(MSG) + seal.OVERHEAD
    assert out[0] == wire.VERSION and out[1] == wire.FLAG_SEALED
    assert seal.Opener([K1], aead=aes_gcm).open(out, SUBJ, NOW) == MSG


def test_no_plaintext_in_envelope():
    out = sealer().seal(SUBJ, MSG)
    assert b"payload" not in out and bytes.fromhex("020000000002") not in out


def test_unsealed_receiver_drops_sealed_message():
    assert wire.check(sealer().seal(SUBJ, MSG), 1514) is DropReason.SEALED_NO_KEY


def test_wrong_key_unknown_id():
    out = sealer().seal(SUBJ, MSG)
    assert seal.key_id(K1) != seal.key_id(K2)
    assert seal.Opener([K2], aead=aes_gcm).open(out, SUBJ, NOW) is DropReason.SEAL_KEY


def test_wrong_key_same_id_fails_authentication():
    out = bytearray(sealer().seal(SUBJ, MSG))
    k3 = next(k for k in (os.urandom(32) for _ in range(5000)) if seal.key_id(k) == seal.key_id(K1))
    assert seal.Opener([k3], aead=aes_gcm).open(bytes(out), SUBJ, NOW) is DropReason.SEAL_AUTH


def test_other_subject_fails():
    out = sealer().seal(SUBJ, MSG)
    assert seal.Opener([K1], aead=aes_gcm).open(out, "vlan.lab.b", NOW) is DropReason.SEAL_AUTH


@pytest.mark.parametrize("pos", [2, 3, 11, 18, 22, 23, 40, -1])
def test_any_flipped_bit_is_refused(pos):
    out = bytearray(sealer().seal(SUBJ, MSG))
    out[pos] ^= 0x01
    assert isinstance(seal.Opener([K1], aead=aes_gcm).open(bytes(out), SUBJ, NOW), DropReason)


def test_replay_dropped_and_window_slides():
    s, o = sealer(), seal.Opener([K1], aead=aes_gcm)
    msgs = [s.seal(SUBJ, MSG) for _ in range(seal.WINDOW + 10)]
    assert o.open(msgs[5], SUBJ, NOW) == MSG
    assert o.open(msgs[5], SUBJ, NOW) is DropReason.REPLAY
    assert o.open(msgs[2], SUBJ, NOW) == MSG  # late but inside the window
    assert o.open(msgs[-1], SUBJ, NOW) == MSG
    assert o.open(msgs[3], SUBJ, NOW) is DropReason.REPLAY  # fell out of the window
    assert o.open(msgs[-2], SUBJ, NOW) == MSG


def test_new_session_after_restart_is_accepted_and_separate():
    o = seal.Opener([K1], aead=aes_gcm)
    a = sealer(session=b"a" * 8).seal(SUBJ, MSG)
    b = sealer(session=b"b" * 8).seal(SUBJ, MSG)  # counter 0 again, other session
    assert o.open(a, SUBJ, NOW) == MSG and o.open(b, SUBJ, NOW) == MSG
    assert a[seal.HEADER_LEN :] != b[seal.HEADER_LEN :]  # other session key
    assert o.sessions == 2


@pytest.mark.parametrize(
    "offset,ok", [(0, True), (119, True), (-119, True), (121, False), (-121, False)]
)
def test_clock_skew(offset, ok):
    out = sealer(now=NOW + offset).seal(SUBJ, MSG)
    r = seal.Opener([K1], aead=aes_gcm).open(out, SUBJ, NOW)
    assert (r == MSG) if ok else (r is DropReason.SEAL_STALE)


def test_rollover_two_keys_then_one():
    o = seal.Opener([K1, K2], aead=aes_gcm)
    assert o.open(sealer(K1).seal(SUBJ, MSG), SUBJ, NOW) == MSG
    assert o.open(sealer(K2, b"t" * 8).seal(SUBJ, MSG), SUBJ, NOW) == MSG
    o.set_keys([K2])
    assert o.sessions == 1
    assert o.open(sealer(K1, b"u" * 8).seal(SUBJ, MSG), SUBJ, NOW) is DropReason.SEAL_KEY


def test_session_table_is_bounded():
    o = seal.Opener([K1], max_sessions=8, aead=aes_gcm)
    for i in range(20):
        assert o.open(sealer(session=i.to_bytes(8, "big")).seal(SUBJ, MSG), SUBJ, NOW) == MSG
    assert o.sessions == 8


def test_bad_keys_rejected():
    with pytest.raises(ValueError):
        seal.Sealer(b"short", b"s" * 8, lambda: NOW, aead=aes_gcm)
    with pytest.raises(ValueError):
        seal.Opener([b"x" * 31], aead=aes_gcm)


@given(st.binary(max_size=200), st.text(max_size=20))
def test_open_never_raises(data, subject):
    r = seal.Opener([K1], aead=aes_gcm).open(data, subject, NOW)
    assert isinstance(r, DropReason)


@given(st.binary(min_size=seal.OVERHEAD, max_size=200), st.integers(0, 255))
def test_forged_envelopes_with_our_key_id_fail(data, flags):
    forged = bytes([1, 2, seal.key_id(K1)]) + data[3:]
    r = seal.Opener([K1], aead=aes_gcm).open(forged, SUBJ, NOW)
    assert r in (DropReason.SEAL_AUTH, DropReason.SEAL_STALE)


@given(st.lists(st.integers(0, 5000), max_size=200))
def test_window_accepts_each_counter_at_most_once(ctrs):
    w = seal.ReplayWindow()
    accepted = []
    for c in ctrs:
        if not w.seen(c):
            w.mark(c)
            accepted.append(c)
    assert len(accepted) == len(set(accepted))
    # Everything new and in order is always accepted.
    for c in sorted(set(ctrs)):
        if c > w.top:
            assert not w.seen(c)


def test_hkdf_matches_rfc5869_and_cryptography():
    """The core's stdlib HKDF gives the keys the library's HKDF gave (the
    keys of every sealed message on the wire depend on it)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    # RFC 5869 test case 1
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    okm = seal.hkdf_sha256(ikm, salt, info, 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    for key, session in ((K1, b"sessabcd"), (K2, bytes(8))):
        lib = HKDF(algorithm=hashes.SHA256(), length=32, salt=session, info=b"vlan-nats v1 frames")
        assert seal.session_key(key, session) == lib.derive(key)
