"""The python datapath's two per-frame steps between the TAP's read slots
and nats-py: the wire message made in place in a slot, and the publish
call (sealed or not).  aio/tunnel.py decides what to publish where."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..core import wire
from ..core.counters import Counters
from ..core.seal import Sealer

_VNET = wire.VNET_HDR_LEN
_HDR = wire.HEADER_LEN

Publish = Callable[[str, memoryview], Awaitable[None]]


def wire_payload(view: memoryview, base: int, ln: int, compat: bool, c: Counters) -> memoryview:
    """The wire message of the frame read into the slot at ``base`` (``ln``
    bytes from the TAP: the virtio header and the frame), made in place:
    the wire header, and the virtio header only when it says something
    (core/wire.py); compat: the bare frame."""
    f = base + _HDR + _VNET
    end = base + _HDR + ln
    if compat:
        return view[f:end]
    if view[base + _HDR] == 0 and view[base + _HDR + 1] == 0:
        view[f - 2] = wire.VERSION  # no virtio flags, no GSO: omit the header
        view[f - 1] = 0
        return view[f - 2 : end]
    if view[base + _HDR + 1]:  # gso_type
        c.tap_rx_gso_frames += 1
        c.tap_rx_gso_bytes += ln - _VNET
    view[base] = wire.VERSION
    view[base + 1] = wire.FLAG_VNET
    view[f - 2 : f] = b"\0\0"  # num_buffers: unused, not written by tun
    return view[base:end]


def publisher(publish: Callable[..., Awaitable[Any]], sealer: Sealer | None) -> Publish:
    """publish(subject, payload), sealed when there is a sealer (it is
    swapped only on SIGHUP: looked up once per batch)."""
    if sealer is None:
        return publish

    async def sealed(subject: str, payload: memoryview) -> None:
        await publish(subject, sealer.seal(subject, payload))

    return sealed
