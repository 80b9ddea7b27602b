"""The address service (``vlan-nats ipam``, and in-process in the hub).

Answers ``<ctl>.ipam`` in the queue group ``ipam``: any number of
instances share the requests, and any one of them answers.  Each instance
is an ADR-32 service, ``vlan-nats-ipam`` (aio/services.py).  The leases
are in a JetStream KV bucket per network, the one source of truth: an
address is allocated by creating its key (create-if-absent), an expired
lease is taken over by an update that names the revision it read, so two
instances never hand out one address twice.  core/ipam.py has the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import nats.js.errors as jserr
from nats.aio.client import Client
from nats.js.kv import KeyValue
from nats.micro.service import Service

from ..core import ipam
from ..core.addrclaim import Claim, claim_subject
from ..core.subjects import SubjectScheme
from ..ratelog import RateLimitedLog
from . import ipampool, netkv, services
from .ctlplane import ask_all
from .leasestore import BucketMissing, IpamError, open_bucket, read_leases

log = logging.getLogger("vlan_nats.ipam")

HOLDER_WAIT = 0.3  # s: a holder answers at once; nobody listening is said at once too
POOL_WAIT = 0.5  # s: other instances' answers about their pools
STOP_GRACE = 2.0  # a request in hand when stopping: time to finish its key operations


def ipam_subject(scheme: SubjectScheme) -> str:
    return f"{scheme.control}.ipam"


def pool_subject(scheme: SubjectScheme) -> str:
    """Every instance (no queue group) answers with its pool: a new one
    refuses to start beside another that serves a different pool."""
    return f"{scheme.control}.ipam.pool"


class IpamService:
    def __init__(
        self,
        nc: Client,
        scheme: SubjectScheme,
        pool: ipam.Pool,
        lease: float = ipam.DEFAULT_LEASE,
        replicas: int = 1,
        clock: Callable[[], float] = time.time,
        holders: Callable[[str], Awaitable[list[Claim]]] | None = None,
        member: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.nc = nc
        # Is this MAC a live member of the network (its node's entry in the
        # members bucket, which only that node may write: docs/security.md)?
        # New leases go to members only, so made-up MACs cannot empty the pool.
        self.member = member or self._is_member
        self._members: KeyValue | None = None
        # Who holds an address on the network (a node with it static): asked
        # before it is leased (core/addrclaim.py).
        self.holders = holders or self._ask_holders
        self.scheme = scheme
        self.pool = pool
        self.lease = lease
        self.replicas = replicas
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self._kv: KeyValue | None = None
        self._svc: Service | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._badlog = RateLimitedLog(log)
        self._fulllog = RateLimitedLog(log)
        self._heldlog = RateLimitedLog(log)
        self._strangerlog = RateLimitedLog(log)

    async def start(self) -> None:
        await self._check_other_pools()
        self._kv = await open_bucket(self.nc, self.scheme, self.replicas)
        # ADR-32 service vlan-nats-ipam (aio/services.py): nats micro sees it.
        self._svc = svc = await services.start(
            self.nc, services.IPAM, "vlan-nats address service (IPv4 leases)",
            {"network": self.scheme.network, "prefix": self.scheme.prefix,
             "host": socket.gethostname()},
            self._figures, "lease",
        )  # fmt: skip
        await services.endpoint(svc, "lease", ipam_subject(self.scheme), self._on_request,
                                ipam.QUEUE_GROUP, self._no_reply)  # fmt: skip
        await services.endpoint(svc, "pool", pool_subject(self.scheme), self._on_pool)
        await self.nc.flush()
        log.info(
            "address service ready network=%s pool=%s range=%s-%s addresses=%d lease=%gs "
            "subject=%s queue=%s service=%s/%s",
            self.scheme.network, self.pool.network, self.pool.first, self.pool.last,
            self.pool.size, self.lease, ipam_subject(self.scheme), ipam.QUEUE_GROUP,
            services.IPAM, svc.id,
        )  # fmt: skip

    def _figures(self) -> dict[str, object]:
        """The STATS data of endpoint lease: the pool and what was done."""
        return {"pool": self.pool.describe(), "addresses": self.pool.size,
                "lease_s": self.lease, **self.counters}  # fmt: skip

    async def _check_other_pools(self) -> None:
        """IpamError when a running instance of this network serves another
        pool: nodes would land on two subnets at random."""
        ours = self.pool.describe()
        answers = await ask_all(self.nc, pool_subject(self.scheme), b"", POOL_WAIT)
        for other in {a.decode(errors="replace")[:200] for a in answers}:
            if other != ours:
                raise IpamError(
                    f"another address service of network {self.scheme.network} serves pool "
                    f"{other}; this one was given {ours}. One network has one pool: give the "
                    "same --pool/--range/--exclude, or stop the other instance first"
                )

    async def _on_pool(self, data: bytes) -> bytes:
        return self.pool.describe().encode()

    async def stop(self) -> None:
        """No new requests; the one in hand (if any) is finished first, so
        closing the connection next cuts no lease operation short."""
        self._stopping = True
        svc, self._svc = self._svc, None
        await services.stop(svc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE):
                await self._lock.acquire()
                self._lock.release()

    def _no_reply(self) -> None:
        self.counters["bad"] += 1
        self._badlog.warning("address service: bad request refused reason=no reply subject")

    async def _on_request(self, data: bytes) -> bytes:
        req = ipam.parse(data)
        if isinstance(req, str):
            self.counters["bad"] += 1
            self._badlog.warning("address service: bad request refused reason=%s", req)
            return ipam.refuse(f"bad request: {req}")
        try:
            # One at a time per instance; the KV arbitrates between instances.
            async with self._lock:
                return await self.handle(req)
        except (nats.errors.Error, jserr.Error, OSError) as e:
            self.counters["errors"] += 1
            if self._stopping:  # the connection is closing under us: not news
                log.debug("address service: request cut short by the stop error=%r", e)
            else:
                self._badlog.warning("address service: lease store error=%r", e)
            return ipam.refuse("lease store unavailable, retry")

    async def handle(self, req: ipam.Request) -> bytes:
        assert self._kv is not None
        now = self.clock()
        if req.op == "release":
            return await self._release(req)
        if req.op == "renew" and req.address is not None:
            lease = await self._claim(req, req.address, now)
            if lease is not None:
                self.counters["renewed"] += 1
                return ipam.grant(self.pool, lease, self.lease)
            # Lost (expired and taken, or never ours): a new request.
        if not await self.member(req.mac):
            self.counters["not_member"] += 1
            self._strangerlog.warning(
                "address service: refused a MAC that is not a live member of network %s "
                "mac=%s node=%s", self.scheme.network, req.mac, req.node,
            )  # fmt: skip
            return ipam.refuse(
                f"{req.mac} is not a live member of network {self.scheme.network}: a node "
                f"asks once it has written its entry in {netkv.members_bucket(self.scheme)} "
                "(server permissions: docs/security.md)"
            )
        async for address in self._candidates(req.mac, now):
            lease = await self._claim(req, address, now)
            if lease is not None:
                self.counters["granted"] += 1
                log.info("lease granted address=%s mac=%s node=%s hostname=%s",
                         address, req.mac, req.node, req.hostname or "-")  # fmt: skip
                return ipam.grant(self.pool, lease, self.lease)
        self.counters["exhausted"] += 1
        self._fulllog.warning("address pool exhausted pool=%s addresses=%d refused mac=%s",
                              self.pool.network, self.pool.size, req.mac)  # fmt: skip
        return ipam.refuse(f"address pool {self.pool.network} exhausted ({self.pool.size} in use)")

    async def _candidates(self, mac: str, now: float) -> AsyncIterator[str]:
        """The MAC's last address, then PROBES from its offset; past those,
        the free ones of the whole bucket (read only when those are taken)."""
        assert self._kv is not None
        tried: set[str] = set()
        try:
            entry = await self._kv.get(ipam.mac_key(mac))
            last = (entry.value or b"").decode(errors="replace")
            tried.add(last)
            yield last
        except jserr.NotFoundError:
            pass
        start = ipam.start_offset(mac, self.pool.size)
        for address in itertools.islice(self.pool.candidates(start), ipam.PROBES):
            if address not in tried:
                tried.add(address)
                yield address
        leases = {a: le for a, (le, _) in (await read_leases(self._kv)).items()}
        for address in ipam.choices(self.pool, leases, mac, now):
            if address not in tried:
                yield address

    async def _claim(self, req: ipam.Request, address: str, now: float) -> ipam.Lease | None:
        """The lease on ``address`` for ``req``'s MAC, if it is free, expired
        or already that MAC's; None when it is another's (or a race lost)."""
        if not self.pool.allows(address):
            return None
        held = await self._entry(address)
        if held is not None and held[0].mac != req.mac and held[0].live(now):
            return None
        if held is None or held[0].mac != req.mac:
            others = [c for c in await self.holders(address) if c.mac != req.mac]
            if others:
                self.counters["held"] += 1
                self._heldlog.warning(
                    "address held by a node, skipped address=%s holder=%s (%s)",
                    address, others[0].describe(), others[0].how,
                )  # fmt: skip
                return None
        lease = await self._write(req, address, held[1] if held else None, now)
        if lease is None:
            self.counters["conflicts"] += 1  # another instance was first
        return lease

    async def _is_member(self, mac: str) -> bool:
        """The MAC's entry in the members bucket, written within MEMBER_GONE."""
        try:
            self._members = self._members or await netkv.members(self.nc, self.scheme,
                                                                 create=False)  # fmt: skip
            entry = await self._members.get(mac.replace(":", ""))
            doc = json.loads(entry.value or b"")
            seen = float(doc["last_seen"])
        except BucketMissing:  # no node has written yet
            return False
        except (jserr.KeyNotFoundError, ValueError, TypeError, KeyError):
            return False
        return doc.get("mac") == mac and self.clock() - seen <= netkv.MEMBER_GONE

    async def _ask_holders(self, address: str) -> list[Claim]:
        """The nodes that answer on the address's claim subject (at once
        none when nobody listens there)."""
        query = Claim("0" * 8, "", "", None, "", address, how="").encode()
        answers = await ask_all(self.nc, claim_subject(self.scheme, address), query, HOLDER_WAIT)
        return [c for c in map(Claim.decode, answers) if c is not None and c.address == address]

    async def _entry(self, address: str) -> tuple[ipam.Lease, int] | None:
        assert self._kv is not None
        try:
            entry = await self._kv.get(ipam.address_key(address))
        except jserr.NotFoundError:  # never leased, or released
            return None
        lease = ipam.Lease.decode(entry.value or b"")
        return (lease, entry.revision) if lease is not None and entry.revision else None

    async def _write(
        self, req: ipam.Request, address: str, revision: int | None, now: float
    ) -> ipam.Lease | None:
        """Create (revision None) or update-at-revision the address's key;
        None when another writer got there first."""
        assert self._kv is not None
        lease = ipam.Lease(address, req.mac, req.node, req.hostname, now + self.lease)
        key = ipam.address_key(address)
        try:
            if revision is None:
                await self._kv.create(key, lease.encode())
            else:
                await self._kv.update(key, lease.encode(), last=revision)
        except jserr.KeyWrongLastSequenceError:
            return None
        except jserr.APIError as e:
            if e.err_code == 10071:  # wrong last sequence, as an API error
                return None
            raise
        await self._kv.put(ipam.mac_key(req.mac), address.encode())
        return lease

    async def _release(self, req: ipam.Request) -> bytes:
        assert self._kv is not None and req.address is not None
        key = ipam.address_key(req.address)
        try:
            entry = await self._kv.get(key)
        except jserr.KeyNotFoundError:
            return ipam.refuse("no such lease")
        lease = ipam.Lease.decode(entry.value or b"")
        if lease is None or lease.mac != req.mac:
            return ipam.refuse("not your lease")
        try:
            await self._kv.delete(key, last=entry.revision)
        except jserr.KeyWrongLastSequenceError:
            return ipam.refuse("lease changed")
        self.counters["released"] += 1
        log.info("lease released address=%s mac=%s", req.address, req.mac)
        return ipam.RELEASED


async def serve(
    servers: list[str],
    options: dict[str, object],
    services: list[tuple[SubjectScheme, ipam.Pool | None]],
    lease: float,
    replicas: int,
    stop: asyncio.Event,
    name: str = "vlan-nats ipam",
    running: list[IpamService] | None = None,
) -> None:
    """Address-service instances (one per network) until ``stop``;
    reconnects forever once started (IpamError if they cannot start).
    ``vlan-nats ipam`` runs one, the hub one per ``--ipam``.  A pool of
    None is the network's definition's, followed live (aio/ipampool.py).
    ``running``: the instances are added to it while they run (metrics)."""
    nc = Client()

    async def on_error(e: Exception) -> None:
        log.warning("nats error=%s", e or type(e).__name__)

    # nats-py retries a first connect forever when reconnects are: bound it,
    # and give up at once when asked to stop meanwhile (SIGTERM).
    connect = asyncio.ensure_future(
        asyncio.wait_for(
            nc.connect(servers=servers, name=name, max_reconnect_attempts=-1,
                       error_cb=on_error, allow_reconnect=True, **options),  # type: ignore[arg-type]
            timeout=5.0 * len(servers),
        )
    )  # fmt: skip
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connect, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not connect.done():
        connect.cancel()
    try:
        await connect
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await nc.close()
        return
    except Exception as e:  # nats-py raises many kinds on a failed connect
        with contextlib.suppress(Exception):
            await nc.close()
        why = "no answer within 5 s" if isinstance(e, TimeoutError) else str(e) or type(e).__name__
        raise IpamError(f"cannot connect to {', '.join(servers)}: {why}") from None
    await _run_services(nc, services, lease, replicas, stop, [] if running is None else running)


async def _run_services(nc: Client, services: list[tuple[SubjectScheme, ipam.Pool | None]],
                        lease: float, replicas: int, stop: asyncio.Event,
                        running: list[IpamService]) -> None:  # fmt: skip
    following: list[asyncio.Task[None]] = []
    try:
        for scheme, given in services:
            pool, defined_lease = (given, None) if given else await ipampool.first_pool(nc, scheme)
            service = IpamService(nc, scheme, pool, defined_lease or lease, replicas)
            await service.start()
            running.append(service)
            if given is None:
                following.append(asyncio.create_task(ipampool.follow(service, nc, scheme)))
        await stop.wait()
    finally:
        for task in following:
            task.cancel()
        for service in list(running):
            await service.stop()
            running.remove(service)
            log.info("address service stopping network=%s counters=%s",
                     service.scheme.network, dict(service.counters))  # fmt: skip
        # The server may be gone: nats-py's close then fails to flush (not news).
        with contextlib.suppress(OSError, nats.errors.Error):
            await nc.close()
