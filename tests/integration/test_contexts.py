"""A NATS user's own connection settings (natsctx.py) against a real
nats-server with authentication: a nats CLI context (--context, or the one
`nats context select` chose) and the NATS CLI's environment.  Needs root."""

import json
import os
import subprocess
import sys

from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab
from vlan_nats.lab.natsserver import NatsServer

AUTH = 'authorization { user: "ops", password: "pw-c0ntext" }\n'


def write_context(home, name, **fields):
    d = home / "nats" / "context"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps(fields))


def vlan_nats(env, *args):
    return subprocess.run([sys.executable, "-m", "vlan_nats", *args], capture_output=True,
                          text=True, timeout=30, env=env)  # fmt: skip


def test_nodes_and_commands_connect_with_a_nats_context(tmp_path, monkeypatch, dataplane):
    server = NatsServer(config=AUTH)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for var in ("NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    with Lab(0, tag="vnc", server=server, dataplane=dataplane) as lab:
        write_context(tmp_path, "lab", url=server.url, user="ops", password="pw-c0ntext")
        h1 = lab.add_node(1, extra=["--context", "lab"], start=False)
        h1.args[h1.args.index("--server") : h1.args.index("--server") + 2] = []
        h1.start()
        assert any("auth=user:ops" in line for line in h1.lines if " ready " in line), h1.lines
        # the selected context (nats context select lab), no --context
        (tmp_path / "nats" / "context.txt").write_text("lab")
        h2 = lab.add_node(2, start=False)
        h2.args[h2.args.index("--server") : h2.args.index("--server") + 2] = []
        h2.start()
        assert ping(h1.ns, h2.ip).ok
        env = dict(os.environ)
        r = vlan_nats(env, "peers", "--json")
        assert r.returncode == 0, r.stderr
        assert sorted(p["dev"] for p in json.loads(r.stdout)) == sorted([h1.dev, h2.dev])
        # the NATS CLI's environment, without any context
        (tmp_path / "nats" / "context.txt").unlink()
        env.update(NATS_URL=server.url, NATS_USER="ops", NATS_PASSWORD="pw-c0ntext")
        r = vlan_nats(env, "peers", "--json")
        assert r.returncode == 0 and len(json.loads(r.stdout)) == 2, r.stderr
        # a flag wins over the environment: this server does not exist
        r = vlan_nats(env, "peers", "--server", "nats://127.0.0.1:1")
        assert r.returncode == 1 and "cannot connect to nats://127.0.0.1:1" in r.stderr
        # a context naming a file that does not exist: one line, no traceback
        write_context(tmp_path, "bad", url=server.url, creds=str(tmp_path / "gone.creds"))
        for cmd in (["peers"], ["up", "--dev", "vncbad0"]):
            r = vlan_nats(env, *cmd, "--context", "bad")
            assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
            assert "context bad" in r.stderr and "gone.creds" in r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
