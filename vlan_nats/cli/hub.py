"""``hub`` and ``install-systemd``."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from .. import configfile, options
from ..errors import ConfigError
from .common import (
    RAW,
    given,
    setup_logging,
)

log = logging.getLogger("vlan_nats")


HUB_EPILOG = """examples:
  vlan-nats hub --token-file /etc/vlan-nats/hub.token
  vlan-nats hub --listen 198.18.0.1:4222 --cluster-listen 198.18.0.1:6222 \
--route nats://198.18.0.2:6222
  vlan-nats hub --config /etc/vlan-nats/hub.toml --print-config
"""


def add_hub(sub: Any) -> None:
    hub = sub.add_parser(
        "hub",
        help="run and supervise a nats-server for the nodes (no NATS needed)",
        formatter_class=RAW,
        description="Run the nats-server that came with vlan-nats, with a generated "
        "configuration; restart it if it dies; stop it gracefully on SIGTERM.",
        epilog=HUB_EPILOG,
    )
    options.add_arguments(hub, "hub", given_only=True)
    hub.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML file with these options"
    )
    hub.add_argument(
        "--print-config",
        action="store_true",
        help="print the generated nats-server configuration (secrets redacted) and exit",
    )
    hub.set_defaults(func=cmd_hub)
    inst = sub.add_parser(
        "install-systemd",
        help="install the systemd units vlan-nats@.service and vlan-nats-hub.service (root)",
        formatter_class=RAW,
        epilog="example:\n  sudo vlan-nats install-systemd\n"
        "  sudo systemctl enable --now vlan-nats@lab     # /etc/vlan-nats/lab.toml\n",
    )
    inst.add_argument(
        "--dir", default="/etc/systemd/system", help="where (default /etc/systemd/system)"
    )
    inst.add_argument("--no-reload", action="store_true", help="do not run systemctl daemon-reload")
    inst.set_defaults(func=cmd_install_systemd)


def cmd_hub(args: argparse.Namespace) -> int:
    from ..hub import Hub, build_hub, server_config

    kw = given(args)
    if "config" in vars(args):
        values, text = configfile.read(args.config, "hub")
        try:
            cfg = build_hub(**{**values, **kw})
        except ConfigError as e:
            raise configfile.locate(e, args.config, text, "hub", set(values) - set(kw)) from None
    else:
        cfg = build_hub(**kw)
    if args.print_config:
        print(server_config(cfg, redact=True), end="")
        return 0
    setup_logging(cfg.log_level, "text")
    return asyncio.run(Hub(cfg).run())


def cmd_install_systemd(args: argparse.Namespace) -> int:
    from ..units import install, installation_paths, loosened_for

    for path in install(args.dir, reload=not args.no_reload):
        print(f"installed {path}")
    for note in loosened_for(installation_paths()).notes():
        print(f"note: {note}")
    print(
        "next: put a config in /etc/vlan-nats/NAME.toml, then\n"
        "  systemctl enable --now vlan-nats@NAME\n"
        "and for a hub: /etc/vlan-nats/hub.toml, then systemctl enable --now vlan-nats-hub"
    )
    return 0
