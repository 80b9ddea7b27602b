"""The option table: parser, --help, config files and defaults from one place."""

import dataclasses

import pytest

from vlan_nats import cli, config, configfile, options
from vlan_nats.errors import ConfigError


def up_help() -> str:
    sub = cli.make_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    return sub["up"].format_help()


def test_every_up_option_is_a_flag_with_its_default_and_a_key():
    text = up_help()
    keys = options.toml_keys("up")
    for o in options.for_command("up"):
        assert o.flag in text, o.flag
        shown = o.help_text().split("(default ")[-1] if "(default " in o.help_text() else None
        if shown:
            assert shown.split()[0] in " ".join(text.split()), (o.flag, shown)
        assert o.toml_key in keys, o.name


def test_defaults_are_what_build_uses():
    cfg = config.build(mac="random")
    d = options.defaults("up")
    for name in ("mtu", "max_macs", "network", "subject_prefix", "log_level", "compat", "up"):
        assert getattr(cfg, name) == d[name], name
    assert cfg.servers == d["servers"] and cfg.mac_ageing == d["mac_ageing"]


def test_a_new_option_is_one_declaration(monkeypatch, tmp_path):
    new = options.Option("frobs", "--frobs", "how many frobs", default=3, kind=int, toml=(int,))
    monkeypatch.setattr(options, "OPTIONS", (*options.OPTIONS, new))
    args = cli.make_parser().parse_args(["up", "--frobs", "5"])
    assert cli.given(args) == {"frobs": 5}
    assert "how many frobs (default 3)" in up_help()
    p = tmp_path / "x.toml"
    p.write_text("frobs = 7\n")
    assert configfile.read(p)[0] == {"frobs": 7}
    assert options.defaults("up")["frobs"] == 3


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("network = 7\n\nmac_ageing = 0\n", 3, "--mac-ageing"),
        ("network = 7\nmtu = 70000\n", 2, "--mtu"),
        ("dev = 'x'\nserver = 'http//bad'\n", 2, "http//bad"),
        ("storm-pps = -1\n", 1, "--storm-pps"),
        ("network = 7\ntoken_file = '/nonexistent/t'\n", 2, "token file"),
        ("network = '-1'\n", 1, "'-1'"),
    ],
)
def test_file_errors_name_their_line_through_the_option(tmp_path, text, line, words):
    p = tmp_path / "lab.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        configfile.build_from(p, {"mac": "random"})
    assert str(e.value).startswith(f"{p}:{line}:") and words in str(e.value), str(e.value)


def test_a_flag_overriding_a_bad_file_value_wins(tmp_path):
    p = tmp_path / "lab.toml"
    p.write_text("mtu = 70000\n")
    assert configfile.build_from(p, {"mtu": 9000, "mac": "random"}).mtu == 9000
    with pytest.raises(ConfigError) as e:
        configfile.build_from(p, {"mtu": 1, "mac": "random"})
    assert not str(e.value).startswith(str(p))  # the flag is wrong, not the file


def test_config_errors_carry_their_option():
    for kw, option in (
        ({"mtu": 1}, "mtu"),
        ({"network": "x y"}, "network"),
        ({"servers": ["http://h"]}, "servers"),
        ({"storm_pps": float("nan")}, "storm_pps"),
        ({"accept_key_file": "/k"}, "accept_key_file"),
    ):
        with pytest.raises(ConfigError) as e:
            config.build(mac="random", **kw)
        assert e.value.option == option, kw


def test_hub_options_come_from_the_table_too(tmp_path):
    from vlan_nats.hub import build_hub

    assert {f.name for f in dataclasses.fields(options.Option)} >= {"name", "flag", "default"}
    cfg = build_hub(environ={})
    assert cfg.listen == options.LOOPBACK_LISTEN and cfg.cluster_name == "vlan-nats"
    assert set(options.toml_keys("hub")) >= {"listen", "route", "token_file", "log_level"}
    with pytest.raises(ConfigError) as e:
        build_hub(routes=["nats://h:6222"], environ={})
    assert e.value.option == "routes"
