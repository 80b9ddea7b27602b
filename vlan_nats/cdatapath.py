"""Thin wrapper over the compiled C datapath (``vlan_nats._datapath``,
csrc/vn_datapath.c): owns its buffers and maps ``-errno`` to errors.
``available()`` says whether this installation has it (it is built only
where libnats was found, see csrc/build_datapath.py).

Nothing here decides anything: aio/ctunnel.py programs the datapath with
what core/ computes.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Any

from .core.counters import DATAPATH_COUNTERS, Counters, DropReason
from .core.frames import FrameKind
from .dpbuild import extension
from .errors import VlanNatsError

try:
    _datapath = extension()
except ImportError as e:  # built without libnats
    _datapath = None
    _MISSING = str(e)
else:
    _MISSING = ""

# A status code from libnats comes back as -(1000 + natsStatus).
_NATS_STATUS = 1000


class DatapathError(VlanNatsError, OSError):
    """The C datapath refused a call (errno, or a libnats status)."""


def available() -> bool:
    return _datapath is not None


def why_missing() -> str:
    return "" if available() else f"built without libnats ({_MISSING})"


def libnats_version() -> str:
    assert _datapath is not None
    return str(_datapath.ffi.string(_datapath.lib.VN_LIBNATS_VERSION).decode())


def _lib() -> Any:
    if _datapath is None:
        raise DatapathError(errno.ENOSYS, why_missing())
    return _datapath.lib


def _ffi() -> Any:
    assert _datapath is not None
    return _datapath.ffi


def _check(ret: int, what: str) -> int:
    if ret < 0:
        if ret <= -_NATS_STATUS:
            raise DatapathError(errno.EIO, f"{what}: libnats status {-ret - _NATS_STATUS}")
        raise DatapathError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def counter_names() -> list[str]:
    """The C counter array's layout (vn_gen.h is generated from the same)."""
    return [*DATAPATH_COUNTERS, *(r.name.lower() for r in DropReason)]


# -- sealing, on its own (the test vectors feed it and core/seal.py) ---------
class CSealer:
    def __init__(self, key: bytes, session: bytes) -> None:
        lib, ffi = _lib(), _ffi()
        if len(key) != 32 or len(session) != 8:
            raise ValueError("a key is 32 bytes and a session 8")
        ptr = lib.vn_sealer_new(key, session)
        if ptr == ffi.NULL:
            raise DatapathError(errno.ENOMEM, "sealer")
        self.ptr: Any = ffi.gc(ptr, lib.vn_sealer_free)
        self._lib, self._ffi = lib, ffi

    @property
    def counter(self) -> int:
        return int(self._lib.vn_sealer_counter(self.ptr))

    @counter.setter
    def counter(self, value: int) -> None:
        self._lib.vn_sealer_set_counter(self.ptr, value)

    def seal(self, subject: str, message: bytes, stamp: int) -> bytes:
        out = self._ffi.new("unsigned char[]", len(message) + 39)
        n = _check(
            self._lib.vn_sealer_seal(self.ptr, subject.encode(), message, len(message),
                                     stamp & 0xFFFFFFFF, out),
            "seal",
        )  # fmt: skip
        return bytes(self._ffi.buffer(out, n))

    def detach(self) -> Any:
        """Hand the sealer to a datapath, which frees it."""
        ptr, self.ptr = self.ptr, None
        self._ffi.gc(ptr, None)  # no destructor any more
        return ptr


class COpener:
    def __init__(self, keys: list[bytes], skew: float = 120.0, max_sessions: int = 4096) -> None:
        lib, ffi = _lib(), _ffi()
        blob = _keys(keys)
        ptr = lib.vn_opener_new(blob, len(keys), skew, max_sessions)
        if ptr == ffi.NULL:
            raise DatapathError(errno.ENOMEM, "opener")
        self.ptr: Any = ffi.gc(ptr, lib.vn_opener_free)
        self._lib, self._ffi = lib, ffi
        self.skew = skew

    def set_keys(self, keys: list[bytes]) -> None:
        _check(self._lib.vn_opener_set_keys(self.ptr, _keys(keys), len(keys)), "opener keys")

    def open(self, msg: bytes, subject: str, now: float) -> bytes | DropReason:
        out = self._ffi.new("unsigned char[]", max(len(msg), 1))
        stale = self._ffi.new("int *")
        n = self._lib.vn_opener_open(self.ptr, subject.encode(), msg, len(msg), now, out, stale)
        if n <= -_NATS_STATUS:
            return DropReason(-n - _NATS_STATUS)
        _check(n, "open")
        return bytes(self._ffi.buffer(out, n))

    @property
    def sessions(self) -> int:
        return int(self._lib.vn_opener_sessions(self.ptr))

    def detach(self) -> Any:
        """Hand the opener to a datapath, which frees it; set_keys still
        works on it while the datapath lives."""
        self._ffi.gc(self.ptr, None)  # no destructor any more
        return self.ptr


def _keys(keys: list[bytes]) -> bytes:
    if not keys or any(len(k) != 32 for k in keys) or len(keys) > 4:
        raise ValueError("one to four keys of 32 bytes")
    return b"".join(keys)


# -- the datapath --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConnOptions:
    """What the data connection needs (vn_conn_opts); see aio/ctunnel.py."""

    servers: tuple[str, ...]
    name: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    nkey_public: str | None = None
    seed: str | None = None
    jwt: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # Per-subscription queue in libnats: ~60 ms of a 64-byte flood, and
    # above what a TCP flow keeps in flight (measured: no slow_consumer drop
    # in TCP runs with or without offloads, docs/performance.md).
    pending_msgs: int = 4096
    pending_bytes: int = 8 * 1024 * 1024
    ping_ms: int = 1000
    max_pings_out: int = 2
    reconnect_wait_ms: int = 1000


@dataclass(frozen=True, slots=True)
class Event:
    kind: int
    reason: int
    value: int
    mac: bytes
    text: str


class CDatapath:
    """One datapath: a TAP fd and its data connection."""

    def __init__(self, tap_fd: int, compat: bool, max_frame: int) -> None:
        lib, ffi = _lib(), _ffi()
        ptr = lib.vn_dp_new(tap_fd, int(compat), max_frame)
        if ptr == ffi.NULL:
            raise DatapathError(errno.ENOMEM, "datapath")
        self._dp: Any = ptr
        self._lib, self._ffi = lib, ffi
        self._names = counter_names()
        if len(self._names) != lib.VN_NCOUNTERS:  # a build older than core/
            raise DatapathError(errno.ENOEXEC, "the C datapath was built from another "
                                "version of core/: reinstall (scripts/install.sh)")  # fmt: skip
        self._counts = ffi.new("unsigned long long[]", len(self._names))
        self._events = ffi.new("struct vn_event[]", 64)
        self._keep: list[Any] = []  # C strings the options point to, while connecting

    # -- lifecycle
    def connect(self, o: ConnOptions, again: bool = False) -> None:
        """Open the data connection (``again``: make it anew after libnats
        closed it; blocks while the threads stop, so call it off the loop)."""
        ffi = self._ffi
        keep = self._keep = []

        def s(v: str | None) -> Any:
            if v is None:
                return ffi.NULL
            c = ffi.new("char[]", v.encode())
            keep.append(c)
            return c

        opts = ffi.new("struct vn_conn_opts *")
        opts.servers = s(",".join(o.servers))
        opts.name = s(o.name)
        opts.user, opts.password, opts.token = s(o.user), s(o.password), s(o.token)
        opts.nkey_public, opts.seed, opts.jwt = s(o.nkey_public), s(o.seed), s(o.jwt)
        opts.tls_ca, opts.tls_cert, opts.tls_key = s(o.tls_ca), s(o.tls_cert), s(o.tls_key)
        opts.tls = int(o.tls)
        opts.pending_msgs, opts.pending_bytes = o.pending_msgs, o.pending_bytes
        opts.ping_ms, opts.max_pings_out = o.ping_ms, o.max_pings_out
        opts.reconnect_wait_ms = o.reconnect_wait_ms
        call = self._lib.vn_dp_reconnect if again else self._lib.vn_dp_connect
        r = call(self._dp, opts)
        self._keep = []
        if r < 0:
            raise DatapathError(errno.EINVAL, f"data connection: {self.error() or r}")

    def error(self) -> str:
        if self._dp is None:
            return ""
        buf = self._ffi.new("char[]", 256)
        self._lib.vn_dp_error(self._dp, buf, 256)
        return str(self._ffi.string(buf).decode(errors="replace"))

    def start(self) -> None:
        _check(self._lib.vn_dp_start(self._dp), "datapath threads")

    def set_nice(self, nice: int) -> None:
        """The nice value the datapath thread takes as it starts (0: left)."""
        _check(self._lib.vn_dp_set_nice(self._dp, nice), "datapath nice")

    def nice_error(self) -> int:  # 0, or the errno of the thread's setting it
        return int(self._lib.vn_dp_nice_error(self._dp))

    def close(self) -> None:
        """Stop the threads, close the connection and free the datapath."""
        if self._dp is not None:
            self._lib.vn_dp_free(self._dp)
            self._dp = None

    # -- state
    @property
    def closed(self) -> bool:
        return self._dp is None

    def connected(self) -> tuple[bool, str]:
        if self._dp is None:
            return False, ""
        buf = self._ffi.new("char[]", 256)
        up = self._lib.vn_dp_connected(self._dp, buf, 256)
        return bool(up), str(self._ffi.string(buf).decode(errors="replace"))

    @property
    def event_fd(self) -> int:
        return int(self._lib.vn_dp_event_fd(self._dp))

    def events(self) -> list[Event]:
        ffi, ev = self._ffi, self._events
        n = self._lib.vn_dp_events(self._dp, ev, 64)
        return [
            Event(
                e.kind, e.reason, e.value, bytes(e.mac), ffi.string(e.text).decode(errors="replace")
            )  # fmt: skip
            for e in (ev[i] for i in range(n))
        ]

    def read_counters(self, c: Counters) -> None:
        """Copy the C counters into ``c`` (the same fields as the python
        datapath's); after close() they stay as last read."""
        if self._dp is None:
            return
        n = self._lib.vn_dp_counters(self._dp, self._counts, len(self._names))
        kinds = {k.name.lower(): k for k in FrameKind}
        for i in range(n):
            name, value = self._names[i], int(self._counts[i])
            if "." in name:
                field, kind = name.split(".")
                getattr(c, field)[kinds[kind]] = value
            elif hasattr(c, name):
                setattr(c, name, value)
            elif name != "events_lost":
                c.drops[DropReason[name.upper()]] = value

    def counter(self, name: str) -> int:
        if self._dp is None:
            return 0
        self._lib.vn_dp_counters(self._dp, self._counts, len(self._names))
        return int(self._counts[self._names.index(name)])

    # -- programming
    def set_mac(self, mac: bytes) -> None:
        _check(self._lib.vn_dp_set_mac(self._dp, mac), "mac")

    def set_blocked(self, blocked: bool) -> None:
        _check(self._lib.vn_dp_set_blocked(self._dp, int(blocked)), "blocked")

    def set_max_frame(self, n: int) -> None:
        _check(self._lib.vn_dp_set_max_frame(self._dp, n), "max frame")

    def set_subjects(
        self, unicast: str, multicast: str, broadcast: str, flood: str, go_style: bool
    ) -> None:
        _check(
            self._lib.vn_dp_set_subjects(self._dp, unicast.encode(), multicast.encode(),
                                         broadcast.encode(), flood.encode(), int(go_style)),
            "subjects",
        )  # fmt: skip

    def set_ingress(self, table: list[int]) -> None:
        _check(self._lib.vn_dp_set_ingress(self._dp, table, len(table)), "ingress table")

    def set_arp(self, prefix: str, rule: list[int], window: float) -> None:
        """Routed ARP: requests to ``prefix`` + target hex as ``rule``
        (core.arp.arp_table) says; "" turns it off."""
        _check(self._lib.vn_dp_set_arp(self._dp, prefix.encode(), rule, len(rule), window), "arp")

    def set_egress(self, table: list[int]) -> None:
        _check(self._lib.vn_dp_set_egress(self._dp, table, len(table)), "egress table")

    def set_bridge(self, bridge: bool, ageing: float, max_macs: int, remote_limit: int) -> None:
        _check(self._lib.vn_dp_set_bridge(self._dp, int(bridge), ageing, max_macs, remote_limit),
               "bridge")  # fmt: skip

    def set_storm(self, rate: float, burst: float) -> None:
        _check(self._lib.vn_dp_set_storm(self._dp, rate, burst), "storm")

    def set_secrets(
        self, token: str | None = None, jwt: str | None = None, seed: str | None = None
    ) -> None:
        """Credentials for the next connection attempts (None: unchanged)."""

        def s(v: str | None) -> Any:
            return v.encode() if v else self._ffi.NULL

        _check(self._lib.vn_dp_set_secrets(self._dp, s(token), s(jwt), s(seed)), "secrets")

    def flush(self, timeout: float) -> None:
        """Block until the server has processed what was sent (its SUBs
        included); OSError when it does not answer in time."""
        _check(self._lib.vn_dp_flush(self._dp, int(timeout * 1000)), "flush")

    def subscribe(self, subject: str) -> bool:
        """True when newly subscribed."""
        return _check(self._lib.vn_dp_subscribe(self._dp, subject.encode()), subject) == 1

    def unsubscribe(self, subject: str) -> None:
        self._lib.vn_dp_unsubscribe(self._dp, subject.encode())

    def local_set(self, mac: bytes, state: int) -> None:
        _check(self._lib.vn_dp_local_set(self._dp, mac, state), "local mac")

    def local_del(self, mac: bytes) -> None:
        self._lib.vn_dp_local_del(self._dp, mac)

    def local_dump(self, max_macs: int) -> list[tuple[bytes, float, int]]:
        ffi = self._ffi
        cap = max_macs * 4 + 64
        macs = ffi.new("unsigned char[]", 6 * cap)
        idle = ffi.new("double[]", cap)
        states = ffi.new("int[]", cap)
        n = self._lib.vn_dp_local_dump(self._dp, macs, idle, states, cap)
        raw = bytes(ffi.buffer(macs, 6 * n))
        return [(raw[6 * i : 6 * i + 6], float(idle[i]), int(states[i])) for i in range(n)]

    def remote_count(self, ageing: float) -> int:
        if self._dp is None:
            return 0
        return int(self._lib.vn_dp_remote_count(self._dp, ageing))

    def verdict(self) -> None:
        """New local MACs were decided (local_set): their held frames go."""
        self._lib.vn_dp_verdict(self._dp)

    def set_sealer(self, sealer: CSealer | None) -> None:
        self._lib.vn_dp_set_sealer(self._dp, sealer.detach() if sealer else self._ffi.NULL)

    def set_opener(self, opener: COpener | None) -> None:
        self._lib.vn_dp_set_opener(self._dp, opener.detach() if opener else self._ffi.NULL)

    def opener_sessions(self) -> int:
        if self._dp is None:
            return 0
        return int(self._lib.vn_dp_opener_sessions(self._dp))
