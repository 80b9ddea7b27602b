"""The options of the services: the address service (``vlan-nats ipam``)
and the hub (``vlan-nats hub``); options.py declares the rest and joins
them into one table."""

from __future__ import annotations

from .optiondef import (
    DEFAULT_LISTEN,
    DEFAULT_MONITOR,
    DEFAULT_STORE,
    LOG_LEVELS,
    Option,
    hub_option,
)

SERVICE_OPTIONS: tuple[Option, ...] = (
    # -- the network's definition only (vlan-nats network set) ------------------
    Option(
        "description",
        "--description",
        "what the network is for (free text, shown by network show)",
        commands=("network",),
        network=True,
    ),
    Option(
        "sealed",
        "--sealed",
        "every node must seal its frames (--key-file)",
        default=False,
        commands=("network",),
        switch=True,
        toml=(bool,),
        network=True,
    ),
    # -- the address service (vlan-nats ipam) ---------------------------------
    Option(
        "pool",
        "--pool",
        "the IPv4 network whose addresses are handed out",
        commands=("ipam",),
        metavar="CIDR",
        network=True,
    ),
    Option(
        "range",
        "--range",
        "only these addresses of the pool",
        shown="all hosts of the pool",
        commands=("ipam",),
        metavar="FIRST-LAST",
        network=True,
    ),
    Option(
        "lease",
        "--lease",
        "lease time of the address service; clients renew at half of it",
        default=3600.0,
        shown="3600",
        commands=("ipam", "hub"),
        kind=float,
        toml=(int, float),
        metavar="S",
        range=(10, 31_536_000),
        unit="seconds",
        network=True,
    ),
    Option(
        "exclude",
        "--exclude",
        "never hand out this address, repeatable",
        commands=("ipam",),
        many=True,
        metavar="ADDR",
        toml=(str, list),
        network=True,
    ),
    Option(
        "replicas",
        "--replicas",
        "JetStream replicas of the address service's lease bucket (a cluster: 3)",
        default=1,
        commands=("ipam", "hub"),
        kind=int,
        toml=(int,),
        metavar="N",
        range=(1, 5),
    ),
    # -- hub ----------------------------------------------------------------
    hub_option(
        "listen",
        "clients (without authentication: 127.0.0.1:4222, and only loopback)",
        "HOST:PORT",
        shown=DEFAULT_LISTEN,
    ),
    hub_option("monitor", "HTTP monitoring, or 'off'", "HOST:PORT", default=DEFAULT_MONITOR),
    hub_option("token_file", "clients need this token", secret=True),
    hub_option("user", "clients need this user ...", "NAME"),
    hub_option("password_file", "... and this password", secret=True),
    Option(
        "allow_anonymous",
        "--allow-anonymous",
        "serve clients without authentication on a non-loopback --listen "
        "(anyone who reaches the port joins every network)",
        default=False,
        commands=("hub",),
        switch=True,
        toml=(bool,),
    ),
    hub_option("tls_cert", "server certificate: TLS on"),
    hub_option("tls_key", "server key", secret=True),
    hub_option("tls_ca", "require client certificates from this CA"),
    Option(
        "tls_first",
        "--tls-first",
        "TLS handshake before INFO",
        default=False,
        commands=("hub",),
        switch=True,
        toml=(bool,),
    ),
    hub_option("cluster_listen", "route port for other hubs", "HOST:PORT"),
    hub_option("cluster_name", "cluster name", "NAME", default="vlan-nats"),
    Option(
        "routes",
        "--route",
        "another hub's route URL, repeatable",
        commands=("hub",),
        many=True,
        metavar="URL",
        toml=(str, list),
        key="route",
    ),
    hub_option("server_name", "nats-server's name", "NAME", shown="<hostname>-hub"),
    hub_option(
        "store",
        "JetStream's store directory (the address service keeps its leases there), or 'off'",
        "DIR",
        default=DEFAULT_STORE,
    ),
    Option(
        "ipam",
        "--ipam",
        "run an address service for this network and pool in the hub, repeatable "
        "(as vlan-nats ipam does; clients: up --address auto); NETWORK alone: the pool "
        "of the network's definition (vlan-nats network set NETWORK pool=CIDR)",
        commands=("hub",),
        many=True,
        metavar="NETWORK[=CIDR]",
        toml=(str, list),
    ),
    Option(
        "log_level",
        "--log-level",
        "log level",
        default="info",
        commands=("hub",),
        choices=LOG_LEVELS,
    ),
)
