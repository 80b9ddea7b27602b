import pytest

from vlan_nats import cli, config, configfile
from vlan_nats.errors import ConfigError

GOOD = """\
# a lab node
server = ["nats://198.18.0.10:4222", "nats://198.18.0.11:4222"]
network = 7
address = "198.18.100.1/24"
mtu = 9000
mac = "02:00:00:00:07:01"
storm-pps = 2000
offload = false
"""


@pytest.fixture(autouse=True)
def machine_id(monkeypatch):
    monkeypatch.setattr(config, "read_machine_id", lambda: "0123456789abcdef0123456789abcdef")


def write(tmp_path, text):
    p = tmp_path / "node.toml"
    p.write_text(text)
    return p


def test_good_file(tmp_path):
    cfg = configfile.build_from(write(tmp_path, GOOD))
    assert cfg.servers == ("nats://198.18.0.10:4222", "nats://198.18.0.11:4222")
    assert cfg.network == "7" and cfg.dev == "vnats7" and cfg.mtu == 9000
    assert cfg.addresses == ("198.18.100.1/24",) and cfg.storm_pps == 2000 and not cfg.offload


@pytest.mark.parametrize(
    "text, where, fragment",
    [
        ("network = 7\nmtu = 70000\n", ":2:", "--mtu"),
        ("network = 7\n\nmac = 'zz'\n", ":3:", "--mac"),
        ("network = 4096\n", ":1:", "network"),
        ("network = 7\ncolour = 'red'\n", ":2:", "unknown key 'colour'"),
        ("mtu = '1500'\n", ":1:", "mtu must be a int"),
        ("compat = 1\n", ":1:", "compat must be a bool"),
        ("server = [1, 2]\n", ":1:", "list of strings"),
        ("network = 7\nmtu = \n", ":2:", "Invalid value"),
        ("[section]\nx = 1\n", ":1:", "unknown key 'section'"),
        ("storm_pps = -1\n", ":1:", "--storm-pps"),
    ],
)
def test_errors_name_the_line(tmp_path, text, where, fragment):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        configfile.build_from(p)
    assert f"{p}{where}" in str(e.value) and fragment in str(e.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read config"):
        configfile.build_from("/nonexistent/vlan-nats.toml")


def test_flags_override_the_file(tmp_path):
    p = write(tmp_path, GOOD)
    args = cli.make_parser().parse_args(
        ["up", "--config", str(p), "--mtu", "1400", "--server", "nats://198.18.0.12:4222"]
    )
    cfg = cli.up_config(args)
    assert cfg.mtu == 1400
    assert cfg.servers == ("nats://198.18.0.12:4222",)  # replaced, not appended
    assert cfg.network == "7"  # from the file


def test_no_flags_no_file_gives_defaults():
    cfg = cli.up_config(cli.make_parser().parse_args(["up"]))
    assert cfg.mtu == 1500 and cfg.servers == ("nats://127.0.0.1:4222",) and cfg.up


def test_check_config_command(tmp_path, capsys):
    assert cli.main(["check-config", str(write(tmp_path, GOOD))]) == 0
    assert "ok: network 7" in capsys.readouterr().out
    bad = write(tmp_path, "network = 7\nmtu = 1\n")
    assert cli.main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2:" in err


HUB = """\
listen = "198.18.0.10:4222"
monitor = "127.0.0.1:8222"
token_file = "{tok}"
ipam = ["lab=198.18.100.0/24"]
"""


def test_check_config_validates_a_hub_file(tmp_path, capsys):
    tok = tmp_path / "tok"
    tok.write_text("t0k\n")
    tok.chmod(0o600)
    hub = write(tmp_path, HUB.format(tok=tok))
    # Told apart by its keys, or named with --hub.
    for argv in (["check-config", str(hub)], ["check-config", "--hub", str(hub)]):
        assert cli.main(argv) == 0
        assert "ok: hub, listen 198.18.0.10:4222, auth token" in capsys.readouterr().out
    # A hub's error names the line, as an up file's does.
    open_hub = write(tmp_path, 'listen = "198.18.0.10:4222"\nstore = "off"\n')
    assert cli.main(["check-config", str(open_hub)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{open_hub}:1:" in err and "authentication" in err
    # An up file given as a hub file is said to be one.
    assert cli.main(["check-config", "--hub", str(write(tmp_path, GOOD))]) == 1
    assert "unknown key" in capsys.readouterr().err


def test_auth_settings_in_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("VLAN_NATS_PASSWORD", raising=False)
    tok = tmp_path / "tok"
    tok.write_text("t0k\n")
    tok.chmod(0o600)
    cfg = configfile.build_from(write(tmp_path, f'network = 7\ntoken-file = "{tok}"\n'))
    assert cfg.auth.token == "t0k" and cfg.auth.describe() == "token"
    p = write(tmp_path, 'network = 7\nuser = "u"\n')
    with pytest.raises(ConfigError, match="needs a password"):
        configfile.build_from(p)
