"""Shared by the commands: the parser class, logging, the event loop, and the
NATS client of the control-plane commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from typing import Any, NoReturn

from .. import natsctx, options
from ..auth import OPTIONS as AUTH_OPTIONS
from ..auth import build_auth, connect_options
from ..config import check_server_url
from ..core.subjects import SubjectScheme
from ..errors import ConfigError, ControlError
from ..logfmt import JsonFormatter
from ..options import DEFAULT_SERVER

log = logging.getLogger("vlan_nats")


RAW = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif os.environ.get("JOURNAL_STREAM"):
        # journald stamps lines itself: no second timestamp.
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        fmt_utc = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        fmt_utc.converter = time.gmtime  # this formatter only, not every one in the process
        handler.setFormatter(fmt_utc)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # nats-py logs every reconnect attempt itself; we log them rate-limited.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    # pyroute2 dumps every netlink message at DEBUG.
    logging.getLogger("pyroute2").setLevel(logging.WARNING)


def example(text: str) -> str:
    return f"example:\n  {text}\n"


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency, but degrade anyway
        log.warning("uvloop not installed; using asyncio's default loop")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


_NOT_OPTIONS = ("command", "func", "config", "print_config")


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, by options.py name."""
    return {k: v for k, v in vars(args).items() if k not in _NOT_OPTIONS}


def add_client(
    sub: Any, name: str, help: str, epilog: str, exclude: tuple[str, ...] = (), **kw: Any
) -> argparse.ArgumentParser:
    """A control-plane command: the NATS connection and network options
    (but those named in ``exclude``)."""
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help, formatter_class=RAW, epilog=epilog, **kw
    )
    options.add_arguments(p, "client", exclude=exclude)
    return p


def scheme_of_args(args: argparse.Namespace) -> SubjectScheme:
    try:
        return SubjectScheme(args.subject_prefix, args.network)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def connection(args: argparse.Namespace) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The servers and nats-py options a client command's flags give, over
    a NATS context's and the NATS CLI's environment (natsctx.py)."""
    v = natsctx.fill({k: getattr(args, k) for k in ("servers", "context", *AUTH_OPTIONS)})
    servers = tuple(check_server_url(u) for u in (v.pop("servers") or [DEFAULT_SERVER]))
    secrets = {k: v.pop(k, None) for k in ("password", "token")}
    return servers, connect_options(build_auth(**{k: v[k] for k in AUTH_OPTIONS}, **secrets))


async def client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A NATS client for the control-plane commands (ControlError if none)."""
    from ..aio.ctlplane import connect_client

    servers, options = connection(args)
    try:
        return await connect_client(servers, options)
    except Exception as e:  # nats-py raises many kinds on a failed connect
        why = str(e) or type(e).__name__
        raise ControlError(f"cannot connect to {', '.join(servers)}: {why}") from None


async def with_client(args: argparse.Namespace, fn):  # type: ignore[no-untyped-def]
    nc = await client(args)
    try:
        return await fn(nc)
    finally:
        await nc.close()
