"""The leases of a network: a JetStream KV bucket (one key per address,
core/ipam.py says how they are spelled), the one source of truth of the
address service (aio/ipam.py) and of ``vlan-nats leases``; and how our KV
buckets are opened (the networks' definitions and members use it too)."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import nats
import nats.js.errors as jserr
from nats.aio.client import Client
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from ..core import ipam
from ..core.subjects import SubjectScheme
from ..errors import VlanNatsError

log = logging.getLogger("vlan_nats.ipam")

NO_JETSTREAM = (
    "the NATS server has no JetStream: the address service's leases and the "
    "networks' definitions live in JetStream KV; start nats-server with -js "
    "(--store_dir DIR), or run vlan-nats hub, which enables it"
)
JETSTREAM_WAIT = 30.0


class IpamError(VlanNatsError):
    """The service cannot start (no JetStream, a bad pool); one line."""


class BucketMissing(IpamError):
    """A bucket opened without creating it does not exist (yet)."""


async def open_bucket(
    nc: Client,
    scheme: SubjectScheme,
    replicas: int = 1,
    create: bool = True,
    wait: float = JETSTREAM_WAIT,
) -> KeyValue:
    """The network's lease bucket (created on first use)."""
    name = ipam.bucket_name(scheme.prefix, scheme.network)
    return await open_kv(nc, name, "vlan-nats address leases", "no leases yet",
                         replicas=replicas, create=create, wait=wait)  # fmt: skip


async def open_kv(
    nc: Client,
    name: str,
    description: str,
    missing: str,
    *,
    replicas: int = 1,
    create: bool = True,
    wait: float = JETSTREAM_WAIT,
    ttl: float | None = None,
) -> KeyValue:
    """A KV bucket of ours, used as it exists (``create``: made on first
    use; else ``missing`` says what its absence means).  A JetStream that
    answers "unavailable" (a cluster still electing its leader) is waited
    for up to ``wait`` seconds; a server without JetStream is said at once.
    ``ttl``: entries not written again within that many seconds disappear
    (when the bucket is made here)."""
    # A server says in its INFO whether it runs JetStream; without it the API
    # answers "unavailable" just like a cluster still electing its leader.
    if not getattr(nc, "_server_info", {}).get("jetstream"):
        raise IpamError(NO_JETSTREAM)
    js = nc.jetstream(timeout=5)
    deadline = time.monotonic() + wait
    while True:
        try:
            try:
                # An existing bucket is used as it is: one an operator made
                # with other settings (e.g. replicas 3 in a cluster) too.
                return await js.key_value(name)
            except (jserr.BucketNotFoundError, jserr.NotFoundError):
                if not create:
                    raise
            return await js.create_key_value(
                KeyValueConfig(bucket=name, history=1, replicas=replicas,
                               description=description, ttl=ttl)
            )  # fmt: skip
        except (jserr.BucketNotFoundError, jserr.NotFoundError):
            raise BucketMissing(f"{missing}: bucket {name} does not exist") from None
        except nats.errors.NoRespondersError:
            raise IpamError(NO_JETSTREAM) from None
        except (jserr.ServiceUnavailableError, nats.errors.TimeoutError) as e:
            refused = permission_refused(nc)
            if refused:
                raise IpamError(f"the server refused {refused} (server permissions: "
                                "docs/security.md)") from None  # fmt: skip
            if time.monotonic() > deadline:
                why = "unavailable" if isinstance(e, jserr.ServiceUnavailableError) else "silent"
                raise IpamError(
                    f"JetStream stayed {why} for {wait:g} s: a cluster without a quorum "
                    "(JetStream on fewer than half of its servers)?"
                ) from None
            log.info("waiting for JetStream bucket=%s", name)
            await asyncio.sleep(1.0)
        except jserr.APIError as e:
            raise IpamError(f"cannot open the bucket {name}: {e.description or e}") from None


def permission_refused(nc: Client) -> str | None:
    """What the server last refused us (a permissions violation), if so."""
    err = str(getattr(nc, "last_error", None) or "")
    m = re.search(r"Permissions Violation for (\w+) to \"?([^\s\"']+)", err, re.I)
    return f"{m.group(1).lower()} to {m.group(2)}" if m else None


async def read_leases(kv: KeyValue) -> dict[str, tuple[ipam.Lease, int]]:
    """address -> (lease, revision) for every address key."""
    out: dict[str, tuple[ipam.Lease, int]] = {}
    try:
        keys = await kv.keys()
    except jserr.NoKeysError:
        return out
    for key in keys:
        address = ipam.address_of_key(key)
        if address is None:
            continue
        try:
            entry = await kv.get(key)
        except jserr.KeyNotFoundError:
            continue
        lease = ipam.Lease.decode(entry.value or b"")
        if lease is not None and entry.revision is not None:
            out[address] = (lease, entry.revision)
    return out


async def list_leases(nc: Client, scheme: SubjectScheme) -> list[ipam.Lease]:
    kv = await open_bucket(nc, scheme, create=False)
    return sorted((le for le, _ in (await read_leases(kv)).values()),
                  key=lambda le: tuple(int(x) for x in le.address.split(".")))  # fmt: skip
