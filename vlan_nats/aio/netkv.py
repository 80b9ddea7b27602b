"""Where a network's definition and its members live: JetStream KV.

    vlan-nats-net_<prefix>                  one key per network: its definition
                                            (netdef.py), revision = the entry's
    vlan-nats-members_<prefix>_<network>    one key per node (its MAC, 12 hex digits):
                                            what the node says of itself; entries
                                            not written again for MEMBER_TTL
                                            disappear

(``<prefix>`` with its dots as ``_``; docs/wire-format.md.)
"""

from __future__ import annotations

import json
import logging
from typing import Any

import nats.js.errors as jserr
from nats.aio.client import Client
from nats.js.kv import KeyValue

from ..core.subjects import SubjectScheme
from ..errors import ConfigError
from ..netdef import Definition, decode
from .leasestore import IpamError, open_kv

log = logging.getLogger(__name__)

MEMBER_REFRESH = 5.0  # s: a node writes its entry again this often
MEMBER_GONE = 15.0  # s: an entry older than this is a node gone without a clean stop
MEMBER_TTL = 600.0  # s: ... and after this long it disappears


class Conflict(ConfigError):
    """A conditional write found another revision (another admin was first)."""


def definitions_bucket(prefix: str) -> str:
    return "vlan-nats-net_" + prefix.replace(".", "_")


def members_bucket(scheme: SubjectScheme) -> str:
    return "vlan-nats-members_" + scheme.prefix.replace(".", "_") + "_" + scheme.network


async def definitions(nc: Client, prefix: str, create: bool = True,
                      replicas: int = 1) -> KeyValue:  # fmt: skip
    """``replicas``: if it is made now (an existing bucket is used as it is)."""
    return await open_kv(nc, definitions_bucket(prefix), "vlan-nats network definitions",
                         "no network is defined yet", create=create, wait=5.0,
                         replicas=replicas)  # fmt: skip


async def members(nc: Client, scheme: SubjectScheme, create: bool = True,
                  replicas: int = 1) -> KeyValue:  # fmt: skip
    return await open_kv(nc, members_bucket(scheme), "vlan-nats network members",
                         "no member has written yet", create=create, wait=5.0,
                         ttl=MEMBER_TTL, replicas=replicas)  # fmt: skip


async def get(kv: KeyValue, network: str) -> Definition | None:
    """The stored definition (None: none).  ConfigError for a value this
    release cannot accept, with its revision in the message."""
    try:
        entry = await kv.get(network)
    except jserr.KeyNotFoundError:  # deleted keys too
        return None
    try:
        return decode(entry.value or b"", entry.revision or 0)
    except ConfigError as e:
        raise ConfigError(f"revision {entry.revision}: {e}") from None


async def put(kv: KeyValue, network: str, d: Definition, revision: int | None = None) -> int:
    """Write ``d``, only over ``revision`` (the one read, or the one the
    admin named); Conflict when another write came first.  The new revision."""
    last = d.revision if revision is None else revision
    try:
        if last == 0:
            return int(await kv.create(network, d.encode()))
        return int(await kv.update(network, d.encode(), last=last))
    except jserr.KeyWrongLastSequenceError:
        raise Conflict(
            f"network {network} changed since revision {last}: read it again "
            "(vlan-nats network show) and repeat the change"
        ) from None


async def names(kv: KeyValue) -> list[str]:
    try:
        return sorted(await kv.keys())
    except jserr.NoKeysError:
        return []


async def delete(kv: KeyValue, network: str) -> bool:
    if await get(kv, network) is None:
        return False
    await kv.purge(network)
    return True


async def read_members(kv: KeyValue) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        keys = await kv.keys()
    except jserr.NoKeysError:
        return out
    for key in keys:
        try:
            entry = await kv.get(key)
            doc = json.loads(entry.value or b"")
        except (jserr.KeyNotFoundError, ValueError):
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return sorted(out, key=lambda m: (str(m.get("host")), str(m.get("dev"))))


__all__ = ["Conflict", "IpamError", "MEMBER_GONE", "MEMBER_REFRESH", "definitions", "delete",
           "get", "members", "names", "put", "read_members"]  # fmt: skip
