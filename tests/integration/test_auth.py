"""NATS authentication and TLS against real nats-servers configured for them."""

import subprocess
import sys
import time
import urllib.request

import pytest

from vlan_nats.errors import LabError
from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab, free_port
from vlan_nats.lab.natsserver import NatsServer


def secret_file(tmp_path, name, value):
    p = tmp_path / name
    p.write_text(value)
    p.chmod(0o600)
    return str(p)


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=vlan-nats test CA")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        run("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
            "-extfile", f"{name}.ext")  # fmt: skip
        (d / f"{name}.key").chmod(0o600)
    return {
        k: str(d / v)
        for k, v in (
            ("ca", "ca.pem"),
            ("server", "server.pem"),
            ("server_key", "server.key"),
            ("client", "client.pem"),
            ("client_key", "client.key"),
        )
    }


def two_nodes_talk(server, args, dataplane):
    with Lab(2, dataplane=dataplane, tag="vna", server=server, node_args=args) as lab:
        h1, h2 = lab.nodes
        assert ping(h1.ns, h2.ip).ok
        return [line for line in h1.lines if " ready " in line][0]


def test_user_and_password(tmp_path, dataplane):
    server = NatsServer(config='authorization { user: "lan", password: "pw-9f3a" }\n')
    ready = two_nodes_talk(
        server,
        ["--user", "lan", "--password-file", secret_file(tmp_path, "pw", "pw-9f3a")],
        dataplane,
    )
    assert "auth=user:lan" in ready


def test_token(tmp_path, dataplane):
    server = NatsServer(config='authorization { token: "tok-51c2" }\n')
    ready = two_nodes_talk(
        server, ["--token-file", secret_file(tmp_path, "tok", "tok-51c2")], dataplane
    )
    assert "auth=token" in ready


def test_mutual_tls(tmp_path, dataplane):
    c = make_certs(tmp_path)
    server = NatsServer(
        config=(
            f'tls {{ cert_file: "{c["server"]}", key_file: "{c["server_key"]}", '
            f'ca_file: "{c["ca"]}", verify: true }}\n'
        )
    )
    ready = two_nodes_talk(
        server,
        ["--tls-ca", c["ca"], "--tls-cert", c["client"], "--tls-key", c["client_key"]],
        dataplane,
    )
    assert "auth=mtls" in ready


def test_wrong_password_never_gets_in_and_says_so(tmp_path, dataplane):
    server = NatsServer(config='authorization { user: "lan", password: "right" }\n')
    with Lab(1, dataplane=dataplane, tag="vna", server=server, start_nodes=False) as lab:
        node = lab.nodes[0]
        node.args += ["--user", "lan", "--password-file", secret_file(tmp_path, "pw", "wrong")]
        with pytest.raises(LabError):
            node.start(timeout=4)
        assert node.proc.poll() is None  # it keeps retrying, it does not crash
        # Said once at ERROR (then rate-limited), although it retried every second,
        refused = [line for line in node.lines if "nats refused our credentials" in line]
        assert len(refused) == 1 and " ERROR " in refused[0], node.lines[-5:]
        assert "authorization violation" in refused[0]
        # and visible in status and metrics: not connected, and why.
        st = node.status()
        assert st["connected"] is False and st["nats_error"] == "authorization violation"
        r = subprocess.run(
            [sys.executable, "-m", "vlan_nats", "status"], capture_output=True, text=True
        )
        assert "disconnected (authorization violation)" in r.stdout, r.stdout


def test_a_token_file_fixed_while_refused_is_used_at_the_next_attempt(tmp_path, dataplane):
    """The token file is read again at every connection attempt, by both
    connections of the C datapath too: fixing it connects within seconds."""
    server = NatsServer(config='authorization { token: "tok-right" }\n')
    with Lab(2, dataplane=dataplane, tag="vna", server=server, start_nodes=False) as lab:
        h1, h2 = lab.nodes
        tok = secret_file(tmp_path, "tok", "tok-wrong")
        h1.args += ["--token-file", tok]
        h2.args += ["--token-file", secret_file(tmp_path, "tok2", "tok-right")]
        with pytest.raises(LabError):
            h1.start(timeout=3)
        assert any("nats refused our credentials" in x for x in h1.lines), h1.lines[-5:]
        secret_file(tmp_path, "tok", "tok-right")  # the same file, fixed
        t0 = time.monotonic()
        h1.wait_ready(10)
        assert time.monotonic() - t0 < 5, h1.lines[-5:]
        assert any("secret changed" in x and tok in x for x in h1.lines), h1.lines[-8:]
        h2.start()
        assert ping(h1.ns, h2.ip, count=2).ok  # frames move: the data connection is in too
        assert h1.status()["nats_error"] is None


def test_a_server_we_cannot_verify_is_a_tls_error_in_status(tmp_path, dataplane):
    c = make_certs(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    stranger = make_certs(other)  # another CA: the server's certificate does not verify
    server = NatsServer(
        config=f'tls {{ cert_file: "{c["server"]}", key_file: "{c["server_key"]}" }}\n'
    )
    with Lab(1, dataplane=dataplane, tag="vna", server=server, start_nodes=False) as lab:
        node = lab.nodes[0]
        node.args += ["--tls-ca", stranger["ca"]]
        with pytest.raises(LabError):
            node.start(timeout=3)
        st = node.status()
        assert st["connected"] is False
        # OpenSSL's reason: "tls: unable to get local issuer certificate"
        assert st["nats_error"].startswith("tls: ") and "certificate" in st["nats_error"], st


def test_wrong_token_is_in_the_metrics(tmp_path, dataplane):
    server = NatsServer(config='authorization { token: "right-8e1" }\n')
    port = free_port()
    with Lab(1, dataplane=dataplane, tag="vna", server=server, start_nodes=False) as lab:
        node = lab.nodes[0]
        node.args += [
            "--token-file",
            secret_file(tmp_path, "tok", "wrong"),
            "--metrics-listen",
            f"127.0.0.1:{port}",
        ]
        with pytest.raises(LabError):
            node.start(timeout=3)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        text = body.decode()
        assert 'vlan_nats_nats_error{error="authorization violation"} 1.0' in text, text
        assert "vlan_nats_nats_connected 0.0" in text


def test_peers_with_a_token(tmp_path, dataplane):
    server = NatsServer(config='authorization { token: "tok-77" }\n')
    tok = secret_file(tmp_path, "tok", "tok-77")
    with Lab(
        2, dataplane=dataplane, tag="vna", server=server, node_args=["--token-file", tok]
    ) as lab:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "vlan_nats",
                "peers",
                "--server",
                lab.server.url,
                "--token-file",
                tok,
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        assert all(n.mac() in r.stdout for n in lab.nodes)
        bad = subprocess.run(
            [sys.executable, "-m", "vlan_nats", "peers", "--server", lab.server.url],
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1


def test_nkey(tmp_path, dataplane):
    import os

    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = tmp_path / "user.nk"
    seed_file.write_bytes(seed)
    seed_file.chmod(0o600)
    server = NatsServer(config=f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    ready = two_nodes_talk(server, ["--nkey", str(seed_file)], dataplane)
    assert "auth=nkey" in ready


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(issuer, subject: str, nats_claims: dict) -> str:
    """A NATS JWT (what nsc writes): ed25519-nkey signed claims."""
    import base64
    import json
    import os
    import time

    claims = {
        "jti": base64.b32encode(os.urandom(20)).decode(),
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "sub": subject,
        "name": subject[:8],
        "nats": {"version": 2, **nats_claims},
    }
    head = _b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64url(issuer.sign(f'{head}.{body}'.encode()))}"


def test_creds_operator_mode(tmp_path, dataplane):
    """Operator -> account -> user JWTs, generated here; the server resolves
    the account from memory, the daemons log in with a .creds file."""
    import os

    import nkeys

    def keypair(prefix):
        return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix)))

    op, acc, usr = (
        keypair(p)
        for p in (nkeys.PREFIX_BYTE_OPERATOR, nkeys.PREFIX_BYTE_ACCOUNT, nkeys.PREFIX_BYTE_USER)
    )
    unlimited = {"subs": -1, "data": -1, "payload": -1, "conn": -1}
    op_jwt = _jwt(op, op.public_key.decode(), {"type": "operator"})
    acc_jwt = _jwt(
        op,
        acc.public_key.decode(),
        {
            "type": "account",
            "limits": {**unlimited, "imports": -1, "exports": -1, "wildcards": True, "leaf": -1},
        },
    )
    user_jwt = _jwt(
        acc, usr.public_key.decode(), {"type": "user", "pub": {}, "sub": {}, **unlimited}
    )
    creds = tmp_path / "node.creds"
    creds.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{usr.seed.decode()}\n------END USER NKEY SEED------\n"
    )
    creds.chmod(0o600)
    server = NatsServer(
        config=f'operator: "{op_jwt}"\nresolver: MEMORY\n'
        f'resolver_preload: {{ {acc.public_key.decode()}: "{acc_jwt}" }}\n'
    )
    ready = two_nodes_talk(server, ["--creds", str(creds)], dataplane)
    assert "auth=creds" in ready


def test_tls_first_server_only_tls(tmp_path):
    """A server that wants the TLS handshake first; no client certificate.
    libnats 3.4 cannot: auto picks the python datapath and says why."""
    c = make_certs(tmp_path)
    server = NatsServer(
        config=(
            f'tls {{ cert_file: "{c["server"]}", key_file: "{c["server_key"]}", '
            "handshake_first: true }\n"
        )
    )
    ready = two_nodes_talk(server, ["--tls-ca", c["ca"], "--tls-first"], None)
    assert "auth=tls" in ready and "datapath=python" in ready
