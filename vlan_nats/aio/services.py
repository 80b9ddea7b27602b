"""NATS's Services API (ADR-32, ``nats.micro``): how the node and the
address service make themselves known to an operator's own tools.

Every service answers ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS`` (and
the same with ``.<name>`` and ``.<name>.<id>``), so ``nats micro list``,
``nats micro stats vlan-nats-node`` and every client library's services
client find it, with per-endpoint request counts, errors and processing
time.  Our request subjects stay what they were (wire-format.md): an
endpoint is only the way a subject is served.

An endpoint that every instance must answer (``peers``: each node; the
address service's ``pool``: each instance) takes a queue group of its
own instance, which is the same as no queue group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import nats.errors
from nats import micro
from nats.aio.client import Client
from nats.micro.request import Request
from nats.micro.service import EndpointStats, Service

from .. import __version__

NODE = "vlan-nats-node"
IPAM = "vlan-nats-ipam"

# (request data) -> the answer, or None: no answer (a malformed or
# rate-limited request; the asker times out, as before).
Answer = Callable[[bytes], Awaitable[bytes | None]]


async def start(
    nc: Client,
    name: str,
    description: str,
    metadata: Mapping[str, str | None],
    figures: Callable[[], dict[str, Any]],
    figures_on: str,
) -> Service:
    """A started service; ``figures()`` is the ``data`` of endpoint
    ``figures_on`` in its STATS (what an operator wants at a glance)."""

    def stats(endpoint: EndpointStats) -> Any:
        return figures() if endpoint.name == figures_on else None

    return await micro.add_service(
        nc,
        name=name,
        version=__version__,
        description=description,
        metadata={k: v for k, v in metadata.items() if v},
        stats_handler=stats,
    )


async def endpoint(
    svc: Service,
    name: str,
    subject: str,
    answer: Answer,
    queue: str | None = None,
    no_reply: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``subject`` as endpoint ``name``; ``queue`` None: every
    instance answers (a queue group of this instance alone).  A request
    without a reply subject is not served: ``no_reply()`` is told."""

    async def handle(req: Request) -> None:
        # nats.micro's Request does not say whether there is a reply subject.
        if not req._msg.reply:
            no_reply()
            return
        out = await answer(req.data)
        if out is not None:
            with contextlib.suppress(nats.errors.Error):  # the connection is going
                await req.respond(out)

    await svc.add_endpoint(name=name, subject=subject, handler=handle, queue_group=queue or svc.id)


STOP_WAIT = 2.0  # s: nats.micro drains its subscriptions (a flush each)


async def stop(svc: Service | None) -> None:
    """Stop answering; bounded, as each drain waits for the server, which
    may be away (the connection is closed next anyway)."""
    if svc is not None:
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            async with asyncio.timeout(STOP_WAIT):
                await svc.stop()
