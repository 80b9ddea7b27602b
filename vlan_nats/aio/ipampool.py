"""The address service's pool (and lease time) from the network's
definition (netdef.py):
``vlan-nats ipam`` without ``--pool`` (and the hub's ``--ipam NETWORK``)
serves the pool ``vlan-nats network set NETWORK pool=CIDR`` defined, and
follows its changes without a restart.

A pool that shrinks or moves: leases outside it are not renewed; their
nodes are given an address of the new pool at their next renewal (half
the lease), and the old lease expires."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import nats.errors
from nats.aio.client import Client

from ..core import ipam
from ..core.subjects import SubjectScheme
from ..errors import ConfigError
from ..netdef import pool_of
from . import netkv
from .leasestore import BucketMissing, IpamError

if TYPE_CHECKING:
    from .ipam import IpamService

log = logging.getLogger("vlan_nats.ipam")

FOLLOW_EVERY = 1.0  # s: the definition is read this often for a changed pool


async def defined_pool(nc: Client, scheme: SubjectScheme) -> tuple[ipam.Pool | None, float | None]:
    """The pool and lease time of the network's definition (None: no
    definition, or none in it).  IpamError when it cannot be read."""
    try:
        kv = await netkv.definitions(nc, scheme.prefix, create=False)
        d = await netkv.get(kv, scheme.network)
    except BucketMissing:
        return None, None
    except ConfigError as e:
        raise IpamError(f"network {scheme.network}: definition refused: {e}") from None
    if d is None:
        return None, None
    return pool_of(d.settings), d.settings.get("lease")


async def first_pool(nc: Client, scheme: SubjectScheme) -> tuple[ipam.Pool, float | None]:
    pool, lease = await defined_pool(nc, scheme)
    if pool is None:
        raise IpamError(
            f"network {scheme.network} has no address pool: give --pool CIDR, or define it "
            f"once for the network: vlan-nats network set {scheme.network} pool=CIDR"
        )
    return pool, lease


async def follow(service: IpamService, nc: Client, scheme: SubjectScheme) -> None:
    """Keep ``service.pool`` (and its lease time, when the definition has
    one) the definition's (a task, until cancelled)."""
    while True:
        await asyncio.sleep(FOLLOW_EVERY)
        try:
            pool, lease = await defined_pool(nc, scheme)
        except (IpamError, nats.errors.Error, TimeoutError) as e:
            log.debug("pool of the definition not read: %s", e)
            continue
        if lease is not None and lease != service.lease:
            log.info("lease time changed network=%s from=%gs to=%gs (new leases and renewals)",
                     scheme.network, service.lease, lease)  # fmt: skip
            service.lease = lease
        old = service.pool
        if pool is not None and pool != old:
            service.pool = pool
            log.info("address pool changed network=%s from=%s to=%s: leases outside it are "
                     "not renewed; their nodes get an address of the new pool at their next "
                     "renewal", scheme.network, old.describe(), pool.describe())  # fmt: skip
        elif pool is None:
            log.warning("network %s: the definition has no pool any more; serving %s",
                        scheme.network, old.describe())  # fmt: skip
