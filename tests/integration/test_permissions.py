"""Per-node subject permissions (the configuration of docs/security.md)."""

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest

from vlan_nats.aio.ctlplane import ask_all
from vlan_nats.lab.checks import ping, wait_ping, wait_until
from vlan_nats.lab.hosts import Lab
from vlan_nats.lab.ipamproc import IpamProcess
from vlan_nats.lab.natsserver import NatsServer

MACS = {"h1": "02:00:5e:10:00:01", "h2": "02:00:5e:10:00:02"}


DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def documented_config() -> str:
    """The server configuration of docs/security.md, verbatim but for the
    passwords and the store directory (the test server keeps its own)."""
    text = DOCS.read_text().split("## Subject permissions", 1)[1]
    block = text.split("```\n", 2)[1]
    lines = [line for line in block.splitlines() if not line.startswith("jetstream {")]
    config = "\n".join(lines)
    for user in ("h1", "h2", "admin", "ipam"):
        config = config.replace(f"${user.upper()}_PASSWORD", f"pw-{user}")
    assert "$" not in config.replace("$JS.", "").replace("$KV.", "").replace("$SRV.", ""), config
    return config


CONFIG = documented_config()


def pw(tmp_path, name):
    p = tmp_path / name
    p.write_text(f"pw-{name}")
    p.chmod(0o600)
    return str(p)


async def try_subscribe(url, user, password, subject):
    """Subscribe as ``user``; the server's refusal, if any, and messages seen."""
    errors: list[str] = []
    seen: list[bytes] = []
    refused = asyncio.Event()

    async def on_error(e):
        errors.append(str(e))
        refused.set()

    async def on_msg(msg):
        seen.append(msg.data)

    nc = await nats.connect(url, user=user, password=password, error_cb=on_error)
    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()
    # The server answers the SUB with -ERR before the PONG of a flush; give
    # a slow one a moment more, but do not sit out a fixed time.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(refused.wait(), 5)
    await nc.close()
    return errors, seen


def test_restricted_nodes_work_and_cannot_read_each_other(tmp_path, dataplane):
    server = NatsServer(config=CONFIG)
    with Lab(2, dataplane=dataplane, tag="vnp", server=server, start_nodes=False) as lab:
        for node, (name, mac) in zip(lab.nodes, MACS.items(), strict=True):
            node.args = [a for a in node.args if a not in ("--mac", "random")]
            node.args += ["--mac", mac, "--user", name, "--password-file", pw(tmp_path, name)]
            node.start()
        h1, h2 = lab.nodes
        assert ping(h1.ns, h2.ip).ok
        h1.link_local()  # DAD done on both sides
        assert wait_ping(h1.ns, h2.link_local() + f"%{h1.dev}").received  # multicast ND works
        assert not any("refused" in line for line in h1.lines + h2.lines)

        # h1's credentials cannot subscribe to h2's unicast subject...
        errors, seen = asyncio.run(
            try_subscribe(lab.server.url, "h1", "pw-h1", "vlan.0.u.02005e100002")
        )
        assert any("permissions violation" in e.lower() for e in errors), errors
        assert seen == []
        # ... nor to everything.
        errors, _ = asyncio.run(try_subscribe(lab.server.url, "h1", "pw-h1", "vlan.>"))
        assert any("permissions violation" in e.lower() for e in errors), errors

        # A daemon started with h1's credentials but h2's MAC is refused its
        # unicast subject: one log line naming it, and it keeps running.
        h3 = lab.add_node(
            3, extra=["--mac", MACS["h2"], "--user", "h1", "--password-file", pw(tmp_path, "h1")]
        )
        deadline = time.monotonic() + 5
        while not any("refused subscription" in ln for ln in h3.lines):
            assert time.monotonic() < deadline, h3.lines[-5:]
            time.sleep(0.1)
        refused = [ln for ln in h3.lines if "refused subscription" in ln]
        assert len(refused) == 1 and "subject=vlan.0.u.02005e100002" in refused[0], refused
        # Its reply inbox (under h2's MAC) is refused too: said once.
        inbox = [ln for ln in h3.lines if "refused our reply inbox" in ln]
        assert len(inbox) == 1 and "subject=_INBOX.02005e100002.>" in inbox[0], inbox
        assert ping(h1.ns, h2.ip).ok
        assert h3.proc.poll() is None  # still running, a ping's time later


@pytest.mark.parametrize("user", ["h1"])
def test_node_cannot_publish_outside_its_network(tmp_path, user):
    server = NatsServer(config=CONFIG)
    server.start()
    try:

        async def go():
            errors: list[str] = []

            async def on_error(e):
                errors.append(str(e))

            nc = await nats.connect(server.url, user=user, password=f"pw-{user}", error_cb=on_error)
            await nc.publish("vlan.7.b", b"x")
            await nc.flush()
            for _ in range(50):  # the -ERR arrives asynchronously
                if errors:
                    break
                await nc.flush()
            await nc.close()
            return errors

        errors = asyncio.run(go())
        assert any("permissions violation for publish" in e.lower() for e in errors), errors
    finally:
        server.close()


def test_address_service_under_these_permissions(tmp_path):
    """docs/security.md's users: the service (user ipam) leases h1 an
    address; h1 itself cannot read the lease bucket (nor write it: it may
    publish on vlan.0.> only)."""
    server = NatsServer(config=CONFIG, jetstream=True)
    with Lab(0, tag="vnp", server=server) as lab:
        service = IpamProcess(
            server.url, "0", "198.18.11.0/28", "--user", "ipam",
            "--password-file", pw(tmp_path, "ipam"),
        )  # fmt: skip
        with service:
            node = lab.add_node(
                1,
                extra=["--mac", MACS["h1"], "--user", "h1", "--password-file", pw(tmp_path, "h1"),
                       "--address", "auto"],
            )  # fmt: skip
            assert node.wait_lease().startswith("198.18.11.")
            assert not any("refused" in line for line in node.lines), node.lines
            r = subprocess.run(
                [sys.executable, "-m", "vlan_nats", "leases", "--server", server.url,
                 "--user", "admin", "--password-file", pw(tmp_path, "admin")],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert r.returncode == 0 and MACS["h1"] in r.stdout, r.stdout + r.stderr
            # nats micro's question, as the admin: both services answer
            names = asyncio.run(srv_ping(lab.server.url, "admin", "pw-admin"))
            assert names == ["vlan-nats-ipam", "vlan-nats-node"], names
            assert not [line for line in service.lines if "refused" in line]
            node.stop()
        errors, _ = asyncio.run(
            try_subscribe(lab.server.url, "h1", "pw-h1", "$KV.vlan-nats-ipam_vlan_0.>")
        )
        assert any("permissions violation" in e.lower() for e in errors), errors


async def srv_ping(url, user, password):
    """The names of the ADR-32 services that answer $SRV.PING."""
    nc = await nats.connect(url, user=user, password=password)
    try:
        return sorted(json.loads(a)["name"] for a in await ask_all(nc, "$SRV.PING", b"", 1.0))
    finally:
        await nc.close()


def network_cli(server, user, tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "vlan_nats", "network", *args, "--server", server.url,
         "--user", user, "--password-file", pw(tmp_path, user)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_a_node_reads_its_networks_definition_but_cannot_write_it(tmp_path):
    """docs/security.md's users: the admin defines the network, the node
    applies it and writes its own member entry; the node's user cannot
    change the definition."""
    server = NatsServer(config=CONFIG, jetstream=True)
    with Lab(0, tag="vnp", server=server) as lab:
        r = network_cli(server, "admin", tmp_path, "set", "0", "mtu=4000")
        assert r.returncode == 0, r.stderr
        node = lab.add_node(
            1, extra=["--mac", MACS["h1"], "--user", "h1", "--password-file", pw(tmp_path, "h1")]
        )
        assert node.status()["mtu"] == 4000 and node.status()["network_revision"] == 1
        # a change arrives by the watch (its consumer is created under these
        # permissions), well before the 5 s safety-net read; a refused watch
        # costs its 5 s request timeout first
        r = network_cli(server, "admin", tmp_path, "set", "0", "mtu=4100")
        assert r.returncode == 0, r.stderr
        t0 = time.monotonic()
        assert wait_until(lambda: node.status()["mtu"] == 4100, 10), "\n".join(node.lines)
        assert time.monotonic() - t0 < 2.5, time.monotonic() - t0
        assert not [line for line in node.lines if "refused" in line or "unreadable" in line]
        assert not node.status()["network_problems"]
        view = network_cli(server, "admin", tmp_path, "show", "0", "--json")
        assert wait_until(lambda: '"02:00:5e:10:00:01"' in network_cli(
            server, "admin", tmp_path, "show", "0", "--json").stdout, 5), view.stdout  # fmt: skip
        r = network_cli(server, "h1", tmp_path, "set", "0", "mtu=1500")
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert node.status()["mtu"] == 4100


def test_a_node_that_may_not_watch_still_follows_its_networks_definition(tmp_path):
    """Permissions without the watch's consumer: the node says so (log,
    status) and reads the definition every 5 s instead of never again."""
    watch = '"$JS.API.CONSUMER.CREATE.KV_vlan-nats-net_vlan",\n'
    assert watch in CONFIG
    server = NatsServer(config=CONFIG.replace(watch, ""), jetstream=True)
    with Lab(0, tag="vnp", server=server) as lab:
        r = network_cli(server, "admin", tmp_path, "set", "0", "mtu=4000")
        assert r.returncode == 0, r.stderr
        node = lab.add_node(
            1, extra=["--mac", MACS["h1"], "--user", "h1", "--password-file", pw(tmp_path, "h1")]
        )
        assert node.status()["mtu"] == 4000
        kinds = lambda: [p["kind"] for p in node.status()["network_problems"]]  # noqa: E731
        assert wait_until(lambda: kinds() == ["no_watch"], 15), node.status()["network_problems"]
        assert any("cannot watch the definition" in line for line in node.lines), node.lines
        r = network_cli(server, "admin", tmp_path, "set", "0", "mtu=4100")
        assert r.returncode == 0, r.stderr
        assert wait_until(lambda: node.status()["mtu"] == 4100, 8), "\n".join(node.lines)
