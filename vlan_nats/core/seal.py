"""Sealed frames: end-to-end encryption and authentication with a shared key.

A sealed message wraps a whole plain message (wire header, virtio header,
frame) so the relay sees only the envelope::

    byte  0      version (1)
    byte  1      flags: SEALED (0x02) only
    byte  2      key id: first byte of SHA-256("vlan-nats key id" || key)
    bytes 3-10   session: 8 random bytes the sender picked when it started
    bytes 11-18  counter: big-endian, 0, 1, 2 ... per session
    bytes 19-22  sender's wall clock, seconds since the epoch mod 2**32
    ciphertext   AES-256-GCM of the plain message
    16 bytes     GCM tag

Each session seals under its own key, HKDF-SHA256(key, salt=session), with
the counter as the nonce: a nonce is never reused under a key, across
restarts (a new session) and reconnects (the counter goes on).  The
envelope header and the subject are the associated data: a message cannot
be moved to another subject, and no header bit can be changed.

A receiver keeps a sliding window of 1024 counters per session and drops
repeats, and drops messages whose clock is more than ``skew`` seconds away
from its own (so forgetting an old session cannot reopen its replays).

Pure: the caller passes in the session bytes, the clock and the AEAD
(``aead(key)`` -> an object with AES-256-GCM's ``encrypt``/``decrypt``;
vlan_nats.crypto gives cryptography's).  HKDF is RFC 5869 on hmac.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Sequence
from typing import Protocol

from .counters import DropReason
from .wire import FLAG_SEALED, VERSION


class Aead(Protocol):
    """What sealing needs of AES-256-GCM (cryptography's AESGCM has it).
    ``decrypt`` raises on a message that does not authenticate."""

    def encrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes: ...


AeadFactory = Callable[[bytes], Aead]

KEY_LEN = 32
SESSION_LEN = 8
TAG_LEN = 16
_HDR = struct.Struct("!BBB8sQI")
HEADER_LEN = _HDR.size  # 23
OVERHEAD = HEADER_LEN + TAG_LEN
WINDOW = 1024
DEFAULT_SKEW = 120.0
MAX_SESSIONS = 4096
_INFO = b"vlan-nats v1 frames"


def key_id(key: bytes) -> int:
    return hashlib.sha256(b"vlan-nats key id" + key).digest()[0]


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869: extract, then expand."""
    prk = hmac.digest(salt, ikm, "sha256")
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes([i]), "sha256")
        out += block
    return out[:length]


def session_key(key: bytes, session: bytes) -> bytes:
    return hkdf_sha256(key, session, _INFO, KEY_LEN)


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_LEN:
        raise ValueError(f"a key is {KEY_LEN} bytes, not {len(key)}")
    return bytes(key)


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "big")


class Sealer:
    """Seals messages of one sender session."""

    __slots__ = ("key_id", "session", "counter", "_aead", "_clock")

    def __init__(
        self, key: bytes, session: bytes, clock: Callable[[], float], *, aead: AeadFactory
    ) -> None:
        if len(session) != SESSION_LEN:
            raise ValueError(f"a session is {SESSION_LEN} bytes")
        key = _check_key(key)
        self.key_id = key_id(key)
        self.session = bytes(session)
        self.counter = 0
        self._aead = aead(session_key(key, self.session))
        self._clock = clock  # () -> float, wall-clock seconds

    def seal(self, subject: str, message: bytes | memoryview) -> bytes:
        ctr = self.counter
        self.counter = ctr + 1
        now = int(self._clock()) & 0xFFFFFFFF
        hdr = _HDR.pack(VERSION, FLAG_SEALED, self.key_id, self.session, ctr, now)
        return hdr + self._aead.encrypt(_nonce(ctr), message, hdr + subject.encode())


class ReplayWindow:
    """Which of the last WINDOW counters of a session were seen (RFC 6479 style)."""

    __slots__ = ("top", "bits")

    def __init__(self) -> None:
        self.top = -1  # highest counter accepted
        self.bits = 0  # bit i: counter top - i was seen

    def seen(self, ctr: int) -> bool:
        if ctr > self.top:
            return False
        back = self.top - ctr
        return back >= WINDOW or bool(self.bits >> back & 1)

    def mark(self, ctr: int) -> None:
        if ctr > self.top:
            shift = ctr - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            self.top = ctr
        else:
            self.bits |= 1 << (self.top - ctr)


class _Session:
    __slots__ = ("aead", "window", "last_seen", "key")

    def __init__(self, aead: Aead, key: bytes, now: float) -> None:
        self.aead = aead
        self.key = key
        self.window = ReplayWindow()
        self.last_seen = now


class Opener:
    """Opens sealed messages from any sender holding one of ``keys``."""

    def __init__(
        self,
        keys: Sequence[bytes],
        skew: float = DEFAULT_SKEW,
        max_sessions: int = MAX_SESSIONS,
        *,
        aead: AeadFactory,
    ) -> None:
        self._aead = aead
        self.skew = skew
        self.max_sessions = max_sessions
        self._sessions: dict[tuple[bytes, int], _Session] = {}
        self._keys: dict[int, list[bytes]] = {}
        self.last_stale = 0  # signed seconds of the last clock mismatch, for a log line
        self.set_keys(keys)

    def set_keys(self, keys: Sequence[bytes]) -> None:
        """Accept these keys from now on; sessions under other keys are forgotten."""
        by_id: dict[int, list[bytes]] = {}
        for k in keys:
            by_id.setdefault(key_id(_check_key(k)), []).append(bytes(k))
        self._keys = by_id
        kept = {k for ks in by_id.values() for k in ks}
        self._sessions = {s: v for s, v in self._sessions.items() if v.key in kept}

    @property
    def key_ids(self) -> list[int]:
        """The id bytes of the keys accepted."""
        return sorted(self._keys)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def open(self, msg: bytes | memoryview, subject: str, now: float) -> bytes | DropReason:
        """The plain message inside ``msg``, or why it is dropped."""
        if len(msg) < OVERHEAD:
            return DropReason.SHORT
        hdr = bytes(msg[:HEADER_LEN])
        version, flags, kid, session, ctr, stamp = _HDR.unpack(hdr)
        if version != VERSION:
            return DropReason.VERSION
        if flags != FLAG_SEALED:
            return DropReason.FLAGS
        keys = self._keys.get(kid)
        if not keys:
            return DropReason.SEAL_KEY
        diff = (stamp - int(now) + 2**31) % 2**32 - 2**31
        if abs(diff) > self.skew:
            self.last_stale = diff
            return DropReason.SEAL_STALE
        aad = hdr + subject.encode()
        body = msg[HEADER_LEN:]
        nonce = _nonce(ctr)
        st = self._sessions.get((session, kid))
        if st is not None:
            if st.window.seen(ctr):
                return DropReason.REPLAY
            try:
                plain = st.aead.decrypt(nonce, body, aad)
            except Exception:
                return DropReason.SEAL_AUTH
        else:
            for k in keys:  # two keys may share an id byte
                aead = self._aead(session_key(k, session))
                try:
                    plain = aead.decrypt(nonce, body, aad)
                except Exception:
                    continue
                st = _Session(aead, k, now)
                self._remember((session, kid), st)
                break
            else:
                return DropReason.SEAL_AUTH
        st.window.mark(ctr)
        st.last_seen = now
        return plain

    def _remember(self, sid: tuple[bytes, int], st: _Session) -> None:
        sessions = self._sessions
        if len(sessions) >= self.max_sessions:
            oldest = min(sessions, key=lambda s: sessions[s].last_seen)
            del sessions[oldest]
        sessions[sid] = st
