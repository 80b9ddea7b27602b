"""NATS contexts and the NATS CLI's environment (natsctx.py): precedence
flag > config file > context > environment > default, credentials as one."""

import json

import pytest

from vlan_nats import config, natsctx
from vlan_nats.errors import ConfigError


@pytest.fixture
def home(tmp_path):
    ctx = tmp_path / "nats" / "context"
    ctx.mkdir(parents=True)
    creds = tmp_path / "lab.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n")
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    (ctx / "lab.json").write_text(json.dumps({
        "description": "the lab", "url": "nats://198.18.0.10:4222, nats://198.18.0.11:4222",
        "user": "ops", "password": "s3cret", "ca": str(ca), "jetstream_domain": "",
    }))  # fmt: skip
    (ctx / "ci.json").write_text(json.dumps({"url": "nats://198.18.0.20:4222",
                                             "creds": str(creds)}))  # fmt: skip
    (ctx / "broken.json").write_text("{not json")
    (ctx / "gone.json").write_text(json.dumps({"nkey": str(tmp_path / "missing.nk")}))
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_a_context_fills_what_is_not_given(home):
    v = natsctx.fill({"context": "lab"}, home)
    assert v["servers"] == ("nats://198.18.0.10:4222", "nats://198.18.0.11:4222")
    assert (v["user"], v["password"]) == ("ops", "s3cret")
    assert v["tls_ca"].endswith("ca.pem")
    # a flag (or the config file) wins, setting by setting
    v = natsctx.fill({"context": "lab", "servers": ["nats://198.18.1.1:4222"]}, home)
    assert v["servers"] == ["nats://198.18.1.1:4222"] and v["user"] == "ops"


def test_credentials_go_as_one(home):
    # a token file given hides the context's user and password: no conflict
    v = natsctx.fill({"context": "lab", "token_file": "/etc/vlan-nats/token"}, home)
    assert "user" not in v and "password" not in v and v["tls_ca"].endswith("ca.pem")
    # the context's creds hide the environment's user
    env = {**home, "NATS_USER": "envuser", "NATS_PASSWORD": "pw"}
    v = natsctx.fill({"context": "ci"}, env)
    assert v["creds"].endswith("lab.creds") and "user" not in v and "password" not in v


def test_the_environment_is_below_the_context(home):
    env = {**home, "NATS_URL": "nats://198.18.2.2:4222", "NATS_USER": "tok"}
    v = natsctx.fill({}, env)
    assert v["servers"] == ("nats://198.18.2.2:4222",)
    assert v["token"] == "tok" and "user" not in v  # NATS_USER alone: a token, as in nats CLI
    v = natsctx.fill({"context": "lab"}, env)
    assert v["servers"][0] == "nats://198.18.0.10:4222" and v["user"] == "ops"
    assert natsctx.fill({}, {**home, "NATS_CONTEXT": "lab"})["user"] == "ops"


def test_the_selected_context(home, tmp_path):
    assert natsctx.fill({}, home) == {}
    (tmp_path / "nats" / "context.txt").write_text("ci\n")  # nats context select ci
    assert natsctx.fill({}, home)["servers"] == ("nats://198.18.0.20:4222",)
    assert natsctx.fill({"context": "lab"}, home)["user"] == "ops"  # --context wins


@pytest.mark.parametrize(
    "name, says",
    [
        ("nope", "context nope: cannot read"),
        ("broken", "is not JSON"),
        ("gone", "names a nkey file that does not exist"),
        ("../x", "bad --context"),
    ],
)
def test_a_bad_context_is_one_line(home, name, says):
    with pytest.raises(ConfigError, match=says) as e:
        natsctx.fill({"context": name}, home)
    assert "\n" not in str(e.value) and e.value.option == "context"


def test_up_takes_the_context(home, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", home["XDG_CONFIG_HOME"])
    for var in ("NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CONTEXT", "NATS_CREDS"):
        monkeypatch.delenv(var, raising=False)
    cfg = config.build(context="lab", network="7")
    assert cfg.servers == ("nats://198.18.0.10:4222", "nats://198.18.0.11:4222")
    assert cfg.auth.user == "ops" and cfg.auth.password == "s3cret"
    assert config.build(context="lab", servers=["nats://198.18.1.1:4222"]).servers == (
        "nats://198.18.1.1:4222",
    )
    with pytest.raises(ConfigError, match="context nope"):
        config.build(context="nope")


def test_the_config_file_is_above_the_context(home, monkeypatch, tmp_path):
    from vlan_nats import configfile

    monkeypatch.setenv("XDG_CONFIG_HOME", home["XDG_CONFIG_HOME"])
    monkeypatch.setenv("NATS_URL", "nats://198.18.2.2:4222")  # the lowest but the default
    conf = tmp_path / "lab.toml"
    conf.write_text('context = "lab"\nserver = "nats://198.18.3.3:4222"\n')
    cfg = configfile.build_from(conf)
    assert cfg.servers == ("nats://198.18.3.3:4222",) and cfg.auth.user == "ops"
    cfg = configfile.build_from(conf, {"servers": ["nats://198.18.4.4:4222"]})
    assert cfg.servers == ("nats://198.18.4.4:4222",)  # the flag above the file
    conf.write_text('context = "lab"\n')
    assert configfile.build_from(conf).servers[0] == "nats://198.18.0.10:4222"
    conf.write_text("network = 7\n")
    assert configfile.build_from(conf).servers == ("nats://198.18.2.2:4222",)
