"""The README's quick start runs as written, in order (root).

Its command blocks are read from README.md and run on four hosts
(network namespaces on one underlay, the hub at 198.18.0.10): a
``# host X`` line picks the host of the lines that follow, a trailing
``# from X`` the host of one line.  ``vlan-nats up|hub|ipam`` run in the
background until they say they are ready; every other command must exit 0.
Only two things are substituted: ``vlan-nats`` is this checkout's, and
``/etc/vlan-nats`` a temporary directory (shared by the hosts, as the
README's copied token file is)."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vlan_nats.lab.hosts import Namespace, unique_prefix
from vlan_nats.lab.proc import spawn, wait_event
from vlan_nats.lab.proc import stop as stop_process

from .conftest import require_root

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = ("## Quick start on several hosts", "### `vlan-nats up` options")
HOSTS = {"hub": "198.18.0.10", "A": "198.18.0.11", "B": "198.18.0.12", "C": "198.18.0.13"}
READY = {"up": " ready ", "hub": " ready ", "ipam": "address service ready"}


def blocks(text: str) -> list[list[tuple[str, str]]]:
    """The ``sh`` blocks of the quick start as (host, command) lines."""
    body = text[text.index(SECTION[0]) : text.index(SECTION[1])]
    out, host = [], "hub"
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        cmds = []
        for line in block.replace("\\\n", " ").splitlines():
            if m := re.match(r"#\s*host (\w+)", line.strip()):
                host = m.group(1)
                continue
            command, _, comment = line.partition("  #")
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            m = re.search(r"from (\w+)", comment)
            cmds.append((m.group(1) if m else host, " ".join(command.split())))
        out.append(cmds)
    return out


def test_the_commands_are_found():
    found = blocks(README.read_text())
    assert len(found) >= 4 and all(found)
    assert {h for b in found for h, _ in b} == set(HOSTS)
    assert any("--token-file" in c and c.startswith("vlan-nats up") for b in found for _, c in b)


@pytest.fixture
def hosts():
    require_root()
    prefix = unique_prefix("vnr")
    made: dict[str, Namespace] = {}
    try:
        for name in HOSTS:
            made[name] = Namespace(f"{prefix}-{name}")
        hub = made["hub"]
        hub.run("ip", "link", "add", "br0", "type", "bridge")
        hub.run("ip", "link", "set", "br0", "up")
        hub.run("ip", "addr", "add", f"{HOSTS['hub']}/24", "dev", "br0")
        for i, name in enumerate(n for n in HOSTS if n != "hub"):
            ns, port = made[name], f"{prefix[-6:]}p{i}"
            subprocess.run(["ip", "link", "add", port, "netns", hub.name, "type", "veth",
                            "peer", "name", "eth0", "netns", ns.name], check=True)  # fmt: skip
            hub.run("ip", "link", "set", port, "master", "br0", "up")
            ns.run("ip", "addr", "add", f"{HOSTS[name]}/24", "dev", "eth0")
            ns.run("ip", "link", "set", "eth0", "up")
        yield made
    finally:
        for ns in made.values():
            ns.delete()


def test_the_quick_start_runs_as_written(hosts, tmp_path):
    etc = tmp_path / "etc-vlan-nats"
    vn = f"{shlex.quote(sys.executable)} -m vlan_nats"
    daemons: list[tuple[str, subprocess.Popen[str], list[str]]] = []
    try:
        for block in blocks(README.read_text()):
            for host, command in block:
                cmd = command.replace("/etc/vlan-nats", str(etc))
                cmd = re.sub(r"(^|;\s*|&&\s*)vlan-nats ", lambda m: f"{m.group(1)}{vn} ", cmd)
                verb = command.split()[1] if command.startswith("vlan-nats ") else ""
                # A daemon is exec'd by the shell, so that SIGTERM reaches it
                # and it stops cleanly (removing its status socket).
                shell = f"exec {cmd}" if verb in READY else cmd
                argv = ["ip", "netns", "exec", hosts[host].name, "sh", "-c", shell]
                if verb in READY:
                    lines: list[str] = []
                    ready = threading.Event()
                    marker = READY[verb]
                    proc = spawn(argv, lines, lambda x, r=ready, m=marker: m in x and r.set())
                    daemons.append((command, proc, lines))
                    assert wait_event(ready, proc, 30), f"{host}: {command}\n" + "\n".join(
                        lines[-10:]
                    )
                else:
                    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                    assert r.returncode == 0, f"{host}: {command}\n{r.stdout}\n{r.stderr}"
        # The node with --address auto got its address from the hub's service.
        leases = next(c for c, _, _ in daemons if "--address auto" in c)
        lines = next(x for c, _, x in daemons if c == leases)
        assert any("address obtained" in x for x in lines), lines[-5:]
    finally:
        codes = [stop_process(proc, signal.SIGTERM, 10) for _, proc, _ in reversed(daemons)]
    assert codes == [0] * len(daemons), codes  # each stopped cleanly on SIGTERM
