"""The hub's Prometheus metrics (``hub --metrics-listen HOST:PORT``): its
nats-server (up, restarts) and its address services (requests by result,
pool size).  Built per scrape from a HubView, on the hub's loop; served by
metrics.serve().  The nodes' metrics are aio/metrics.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from . import metrics

# What an address service counts (aio/ipam.py), every one a stable series.
RESULTS = ("granted", "renewed", "released", "held", "conflicts", "exhausted", "not_member",
           "bad", "errors")


@dataclass(frozen=True, slots=True)
class ServiceView:
    network: str
    pool: str
    addresses: int
    counters: dict[str, int]


@dataclass(frozen=True, slots=True)
class HubView:
    version: str
    listen: str
    server_up: bool
    restarts: int
    services: list[ServiceView] = field(default_factory=list)


def _families(v: HubView) -> Iterator[object]:
    info = InfoMetricFamily("vlan_nats_hub", "This hub")
    info.add_metric([], {"version": v.version, "listen": v.listen})
    yield info
    yield GaugeMetricFamily(
        "vlan_nats_hub_server_up", "1 while the hub's nats-server runs", value=int(v.server_up)
    )
    yield CounterMetricFamily(
        "vlan_nats_hub_server_restarts", "Times the hub restarted its nats-server",
        value=v.restarts,
    )  # fmt: skip
    requests = CounterMetricFamily(
        "vlan_nats_ipam_requests",
        "Address-service requests by network and result (granted, renewed, released, held: "
        "skipped as a node holds it, conflicts: another instance was first, exhausted, "
        "not_member: refused, the MAC is no live member of the network, bad, "
        "errors: the lease store failed)",
        labels=["network", "result"],
    )
    pool = GaugeMetricFamily(
        "vlan_nats_ipam_pool_addresses", "Addresses in the pool", labels=["network", "pool"]
    )
    for s in v.services:
        for result in RESULTS:
            requests.add_metric([s.network, result], s.counters.get(result, 0))
        pool.add_metric([s.network, s.pool], s.addresses)
    yield requests
    yield pool


def registry_for(view: Callable[[], HubView]) -> CollectorRegistry:
    return metrics.registry(lambda: _families(view()))
