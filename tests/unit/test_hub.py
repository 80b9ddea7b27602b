import pytest

from vlan_nats.errors import ConfigError
from vlan_nats.hub import build_hub, server_config


def secret(tmp_path, name, value):
    p = tmp_path / name
    p.write_text(value)
    p.chmod(0o600)
    return str(p)


def test_defaults():
    cfg = build_hub(environ={})
    text = server_config(cfg)
    # No authentication: this host only.
    assert 'listen: "127.0.0.1:4222"' in text and 'http: "127.0.0.1:8222"' in text
    assert "authorization" not in text and "cluster" not in text


def test_with_a_token_the_default_listen_is_every_address(tmp_path):
    cfg = build_hub(token_file=secret(tmp_path, "tok", "s3cret"), environ={})
    assert cfg.listen == "0.0.0.0:4222" and cfg.auth_text == "token"


@pytest.mark.parametrize("listen", ["0.0.0.0:4222", "198.18.0.10:4222", ":4222"])
def test_an_open_server_on_the_network_needs_an_explicit_flag(listen):
    with pytest.raises(ConfigError, match="without authentication lets anyone") as e:
        build_hub(listen=listen, environ={})
    assert e.value.option == "listen" and "--token-file" in str(e.value)
    cfg = build_hub(listen=listen, allow_anonymous=True, environ={})
    assert cfg.auth_text == "none" and cfg.listen.endswith(":4222")


@pytest.mark.parametrize("listen", ["127.0.0.1:4333", "localhost:4222", "[::1]:4222"])
def test_loopback_needs_no_authentication(listen):
    assert build_hub(listen=listen, environ={}).listen == listen


def test_token_tls_cluster(tmp_path):
    cert = secret(tmp_path, "c.pem", "x")
    cfg = build_hub(
        listen="198.18.0.1:4222",
        monitor="off",
        token_file=secret(tmp_path, "tok", "s3cret"),
        tls_cert=cert,
        tls_key=cert,
        tls_ca=cert,
        cluster_listen="198.18.0.1:6222",
        routes=["nats://198.18.0.2:6222"],
        environ={},
    )
    text = server_config(cfg)
    assert 'authorization { token: "s3cret" }' in text
    assert "verify: true" in text and "http:" not in text
    assert 'routes: ["nats://198.18.0.2:6222"]' in text
    assert "s3cret" not in server_config(cfg, redact=True)


def test_user_password_quoted(tmp_path):
    cfg = build_hub(user="lan", password_file=secret(tmp_path, "pw", 'a"b\\c'), environ={})
    assert 'password: "a\\"b\\\\c"' in server_config(cfg)


@pytest.mark.parametrize(
    "kw,fragment",
    [
        ({"listen": "nope"}, "HOST:PORT"),
        ({"listen": "1.2.3.4:70000"}, "HOST:PORT"),
        ({"user": "u"}, "needs a password"),
        ({"tls_cert": "/etc/hostname"}, "go together"),
        ({"tls_ca": "/etc/hostname"}, "need the server's"),
        ({"routes": ["nats://198.18.0.2:6222"]}, "needs --cluster-listen"),
        ({"token_file": "/nonexistent"}, "cannot read token file"),
        ({"ipam": ["7=x"]}, "bad --ipam"),
        ({"ipam": ["7=198.18.0.0"]}, "give a prefix length"),
        ({"ipam": ["-7=198.18.0.0/24"]}, "bad network"),
        ({"ipam": ["7=198.18.0.0/24"], "store": "off"}, "needs JetStream"),
        ({"ipam": ["7=198.18.0.0/24"], "lease": 1}, "bad --lease 1"),
    ],
)
def test_mistakes(kw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_hub(environ={}, **kw)


def test_cli_config_file_and_flags(tmp_path, capsys):
    from vlan_nats.cli import main

    tok = secret(tmp_path, "tok", "s3cret")
    conf = tmp_path / "hub.toml"
    conf.write_text(
        f'listen = "198.18.0.1:4222"\ntoken_file = "{tok}"\n'
        'cluster_listen = "198.18.0.1:6222"\nroute = "nats://198.18.0.2:6222"\n'
    )
    assert main(["hub", "--config", str(conf), "--monitor", "off", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert 'listen: "198.18.0.1:4222"' in out and "http:" not in out
    assert 'routes: ["nats://198.18.0.2:6222"]' in out
    assert "s3cret" not in out and "<redacted>" in out
    conf.write_text('listen = "198.18.0.1:4222"\nbogus = 1\n')
    assert main(["hub", "--config", str(conf), "--print-config"]) == 1
    err = capsys.readouterr().err
    assert "hub.toml:2: unknown key 'bogus'" in err, err


def test_jetstream_and_address_services():
    cfg = build_hub(environ={}, store="/srv/js", ipam=["7=198.18.7.0/24", "lab=198.18.8.0/24"])
    assert 'jetstream { store_dir: "/srv/js" }' in server_config(cfg)
    assert [(n, str(p.network)) for n, p in cfg.ipam] == [
        ("7", "198.18.7.0/24"),
        ("lab", "198.18.8.0/24"),
    ]
    assert "jetstream" not in server_config(build_hub(environ={}, store="off"))
    assert build_hub(environ={}).store == "/var/lib/vlan-nats-hub"  # the unit's StateDirectory
    # NETWORK alone: the pool of the network's definition (vlan-nats network set).
    assert build_hub(environ={}, store="/srv/js", ipam=["7"]).ipam == (("7", None),)


def test_cli_config_file_with_address_services(tmp_path, capsys):
    from vlan_nats.cli import main

    conf = tmp_path / "hub.toml"
    conf.write_text('store = "/srv/js"\nipam = ["lab=198.18.100.0/24"]\nlease = 600\n')
    assert main(["hub", "--config", str(conf), "--print-config"]) == 0
    assert 'jetstream { store_dir: "/srv/js" }' in capsys.readouterr().out
    conf.write_text('ipam = "lab=198.18.100.0"\n')
    assert main(["hub", "--config", str(conf), "--print-config"]) == 1
    err = capsys.readouterr().err
    assert "hub.toml:1: bad --ipam" in err and "give a prefix length" in err, err
