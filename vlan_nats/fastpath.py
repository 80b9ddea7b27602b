"""Thin wrapper over the compiled fast path (``vlan_nats._fastpath``).

It owns the reused buffers and maps ``-errno`` returns to exceptions.  A
pure-Python backend with the same interface (os.read/os.write/ioctl) takes
over when the C module is not built, or when ``VLAN_NATS_FASTPATH=python``;
tests run both.

Buffers are sized for the largest frame a TAP can hand over (a 64 KiB GSO
super-frame plus headers), never for the MTU.

Read slot layout (one slot per frame of a batch)::

    [wire header room (2)][virtio_net_hdr (12)][Ethernet frame ...]

so the data path can write the wire header in place and publish one slice.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import struct
from typing import Any

from .core import wire
from .core.vnet import MAX_GSO_FRAME
from .errors import NetnsError, TapError

log = logging.getLogger(__name__)

# Fallback copies of kernel ABI values (include/uapi/linux/if_tun.h,
# include/uapi/linux/if.h, include/uapi/linux/sched.h); the C backend reads
# them from the kernel headers and a unit test checks that every one agrees
# (constants() below).
IFNAMSIZ = 16
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_TUN_EXCL = 0x8000
CLONE_NEWNET = 0x40000000
TUN_F = {"CSUM": 0x01, "TSO4": 0x02, "TSO6": 0x04, "TSO_ECN": 0x08, "USO4": 0x20, "USO6": 0x40}

# A read slot holds the largest frame the receiver accepts (core/vnet.py)
# and a little more: a longer frame is then read whole and refused by the
# receiver's check, never cut to a length that looks valid.
MAX_FRAME = MAX_GSO_FRAME + 64
_ABI = (
    "TUNSETIFF",
    "TUNSETOFFLOAD",
    "TUNSETVNETHDRSZ",
    "IFF_TAP",
    "IFF_NO_PI",
    "IFF_VNET_HDR",
    "IFF_TUN_EXCL",
    "CLONE_NEWNET",
)
SLOT_HEADROOM = wire.HEADER_LEN


def _check(ret: int, what: str, exc: type[OSError] = TapError) -> int:
    if ret < 0:
        raise exc(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


class _CBackend:
    name = "c"

    def __init__(self, mod: Any) -> None:
        self.ffi, self.lib = mod.ffi, mod.lib
        # Frame buffers are always written before they are read: skip
        # cffi's zero-fill, so pages a quiet node never uses stay out of RSS.
        self._raw = self.ffi.new_allocator(should_clear_after_alloc=False)

    def constants(self) -> dict[str, int]:
        lib = self.lib
        return {
            "IFNAMSIZ": lib.VN_IFNAMSIZ,
            "VNET_HDR_LEN": lib.VN_VNET_HDR_LEN,
            **{k: getattr(lib, f"VN_TUN_F_{k}") for k in TUN_F},
            **{k: getattr(lib, f"VN_{k}") for k in _ABI},
        }

    def tap_open(self, name: str, vnet_hdr: bool) -> tuple[int, str]:
        out = self.ffi.new("char[]", IFNAMSIZ)
        fd = _check(self.lib.vn_tap_open(name.encode(), int(vnet_hdr), out), f"open TAP {name}")
        return fd, self.ffi.string(out).decode()

    def set_offload(self, fd: int, flags: int) -> int:
        return int(self.lib.vn_tap_set_offload(fd, flags))

    def setns(self, fd: int) -> int:
        return int(self.lib.vn_setns_net(fd))

    def alloc(self, size: int) -> tuple[Any, memoryview]:
        buf = self._raw("unsigned char[]", size)
        return buf, memoryview(self.ffi.buffer(buf))

    def alloc_u32(self, n: int) -> Any:
        return self.ffi.new("unsigned int[]", n)

    def alloc_int(self, n: int) -> Any:
        return self.ffi.new("int[]", n)

    def read_batch(
        self,
        fd: int,
        buf: Any,
        view: memoryview,
        slot: int,
        off: int,
        cap: int,
        maxn: int,
        lens: Any,
    ) -> int:
        return int(self.lib.vn_read_batch(fd, buf, slot, off, cap, maxn, lens))

    def write_batch(
        self, fd: int, buf: Any, view: memoryview, offs: Any, lens: Any, n: int, errs: Any
    ) -> int:
        return int(self.lib.vn_write_batch(fd, buf, offs, lens, n, errs))


class _PyBackend:
    """Same contract as the C backend, in Python: for tests and debugging."""

    name = "python"

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)

    def constants(self) -> dict[str, int]:
        copies = globals()
        return {
            "IFNAMSIZ": IFNAMSIZ,
            "VNET_HDR_LEN": wire.VNET_HDR_LEN,
            **TUN_F,
            **{k: copies[k] for k in _ABI},
        }

    def tap_open(self, name: str, vnet_hdr: bool) -> tuple[int, str]:
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise TapError(e.errno, f"open TAP {name}: {e.strerror}") from None
        flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL | (IFF_VNET_HDR if vnet_hdr else 0)
        try:
            ifr = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
            if vnet_hdr:
                fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", wire.VNET_HDR_LEN))
        except OSError as e:
            os.close(fd)
            raise TapError(e.errno, f"open TAP {name}: {e.strerror}") from None
        return fd, ifr[:IFNAMSIZ].split(b"\0", 1)[0].decode()

    def set_offload(self, fd: int, flags: int) -> int:
        try:
            fcntl.ioctl(fd, TUNSETOFFLOAD, flags)
        except OSError as e:
            return -(e.errno or errno.EIO)
        return 0

    def setns(self, fd: int) -> int:
        if self._libc.setns(fd, CLONE_NEWNET) < 0:
            return -ctypes.get_errno()
        return 0

    def alloc(self, size: int) -> tuple[Any, memoryview]:
        buf = bytearray(size)
        return buf, memoryview(buf)

    def alloc_u32(self, n: int) -> Any:
        return [0] * n

    alloc_int = alloc_u32

    def read_batch(
        self,
        fd: int,
        buf: Any,
        view: memoryview,
        slot: int,
        off: int,
        cap: int,
        maxn: int,
        lens: Any,
    ) -> int:
        i = 0
        while i < maxn:
            start = i * slot + off
            try:
                n = os.readv(fd, [view[start : start + cap]])
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as e:
                if i:
                    break
                return -(e.errno or errno.EIO)
            lens[i] = n
            i += 1
        return i

    def write_batch(
        self, fd: int, buf: Any, view: memoryview, offs: Any, lens: Any, n: int, errs: Any
    ) -> int:
        ok = 0
        for i in range(n):
            try:
                os.write(fd, view[offs[i] : offs[i] + lens[i]])
                errs[i] = 0
                ok += 1
            except OSError as e:
                errs[i] = e.errno or errno.EIO
        return ok


def _load_backend() -> _CBackend | _PyBackend:
    if os.environ.get("VLAN_NATS_FASTPATH", "c") == "python":
        return _PyBackend()
    try:
        from . import _fastpath
    except ImportError:
        log.warning("fastpath backend=python reason=%s", "C module not built (pip install -e .)")
        return _PyBackend()
    return _CBackend(_fastpath)


backend = _load_backend()


def set_backend(name: str) -> None:
    """Switch the backend ("c" or "python") used by objects made from now
    on; for tests and debugging."""
    global backend
    if name == "python":
        backend = _PyBackend()
    else:
        from . import _fastpath

        backend = _CBackend(_fastpath)


class Tap:
    """An open, non-persistent TAP device: it vanishes when the fd closes."""

    def __init__(self, fd: int, name: str, vnet_hdr: bool) -> None:
        self._be = backend
        self.fd = fd
        self.name = name
        self.vnet_hdr = vnet_hdr

    @classmethod
    def open(cls, name: str, vnet_hdr: bool = True) -> Tap:
        """Create TAP ``name``.  Raises TapError with a clear message."""
        try:
            fd, real = backend.tap_open(name, vnet_hdr)
        except TapError as e:
            if e.errno == errno.EBUSY:
                raise TapError(e.errno, f"device {name} already exists") from None
            if e.errno in (errno.EPERM, errno.EACCES):
                raise TapError(
                    e.errno, f"open TAP {name}: permission denied (run as root)"
                ) from None
            if e.errno == errno.ENOENT:
                raise TapError(e.errno, "/dev/net/tun is missing (modprobe tun)") from None
            if e.errno == errno.EINVAL:
                raise TapError(
                    e.errno, f"device {name} already exists or the name is invalid"
                ) from None
            raise
        return cls(fd, real, vnet_hdr)

    def set_offload(self, flags: int) -> int:
        """TUNSETOFFLOAD; returns 0 or -errno (refusal is a normal answer)."""
        return self._be.set_offload(self.fd, flags)

    def negotiate_offloads(self) -> tuple[str, ...]:
        """Ask for checksum + TSO (needed to get GSO frames at all) and, if
        the kernel accepts them (Linux >= 6.2), USO.  Returns the names in
        force; () when even TCP offloads are refused."""
        c = self._be.constants()
        tcp = ("CSUM", "TSO4", "TSO6", "TSO_ECN")
        for names in ((*tcp, "USO4", "USO6"), tcp):
            flags = 0
            for name in names:
                flags |= c[name]
            if self.set_offload(flags) == 0:
                return names
        self.set_offload(0)
        return ()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    _check(backend.setns(fd), "setns", NetnsError)


class FrameReader:
    """Batched TAP reads into reused slots (see the module docstring)."""

    def __init__(self, fd: int, batch: int = 64) -> None:
        self._be = be = backend
        self.fd = fd
        self.batch = batch
        self.cap = wire.VNET_HDR_LEN + MAX_FRAME
        self.slot = (SLOT_HEADROOM + self.cap + 63) & ~63
        self._buf, self.view = be.alloc(self.slot * batch)
        self.lens = be.alloc_u32(batch)

    def read(self) -> int:
        """Read up to ``batch`` frames; 0 when none are ready.  Frame i (with
        its virtio header) is ``view[i*slot + 2 : i*slot + 2 + lens[i]]``."""
        n = self._be.read_batch(
            self.fd, self._buf, self.view, self.slot, SLOT_HEADROOM, self.cap, self.batch, self.lens
        )
        if n < 0:
            raise TapError(-n, f"read TAP: {os.strerror(-n)}")
        return n


class FrameWriter:
    """Collects frames (each with a virtio header) and writes them in one
    C call.  ``add`` returns False when the batch is full: flush first."""

    def __init__(self, fd: int, capacity: int = 1 << 21, max_frames: int = 512) -> None:
        self._be = be = backend
        self.fd = fd
        self.capacity = capacity
        self.max_frames = max_frames
        self._buf, self.view = be.alloc(capacity)
        self._offs = be.alloc_u32(max_frames)
        self._lens = be.alloc_u32(max_frames)
        self._errs = be.alloc_int(max_frames)
        self.count = 0
        self._pos = 0

    def add(self, msg: memoryview, start: int, vnet_present: bool) -> bool:
        """Queue ``msg[start:]``; a zero virtio header is prepended when the
        message carries none."""
        pos = self._pos
        vhl = 0 if vnet_present else wire.VNET_HDR_LEN
        end = pos + vhl + len(msg) - start
        if self.count >= self.max_frames or end > self.capacity:
            return False
        if vhl:
            self.view[pos : pos + vhl] = ZERO_VNET
        self.view[pos + vhl : end] = msg[start:]
        i = self.count
        self._offs[i] = pos
        self._lens[i] = end - pos
        self.count = i + 1
        self._pos = end
        return True

    def flush(self) -> tuple[int, list[int]]:
        """Write the batch.  Returns (frames written, errnos of failures)."""
        n = self.count
        if not n:
            return 0, []
        ok = self._be.write_batch(
            self.fd, self._buf, self.view, self._offs, self._lens, n, self._errs
        )
        failures = [self._errs[i] for i in range(n) if self._errs[i]] if ok < n else []
        self.count = 0
        self._pos = 0
        return ok, failures

    def pending_bytes(self) -> int:
        return self._pos


ZERO_VNET = bytes(wire.VNET_HDR_LEN)
