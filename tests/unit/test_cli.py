import pytest

from vlan_nats import cli, daemon


def test_bad_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["up", "--bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--bogus" in err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["up", "--mac", "zz"], "bad --mac"),
        (["up", "--network", "5000"], "bad network"),
        (["up", "--mtu", "1"], "bad --mtu"),
        (["up", "--server", "http://h"], "bad --server"),
    ],
)
def test_bad_values_are_one_line(capsys, argv, fragment):
    assert cli.main(argv + ["--mac", "random"] if "--mac" not in argv else argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


def test_not_root_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(daemon, "has_net_admin", lambda: False)
    assert cli.main(["up", "--mac", "random"]) == 1
    err = capsys.readouterr().err
    assert (
        err == "vlan-nats up: error: vlan-nats up must run as root "
        "(it needs CAP_NET_ADMIN for its TAP device)\n"
    )


def test_missing_netns_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(daemon, "has_net_admin", lambda: True)
    assert cli.main(["up", "--mac", "random", "--netns", "vn-surely-missing-ns"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_every_command_help_has_an_example():
    parser = cli.make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert "example" in p.format_help(), name


def test_status_exit_code_says_whether_a_daemon_has_a_problem(capsys, monkeypatch):
    from vlan_nats.aio import statussock
    from vlan_nats.core.status import Status

    well = Status(dev="vnats7", network="7", connected=True)
    sick = Status(dev="vnats8", network="8", connected=False, nats_error="connection refused")
    monkeypatch.setattr(statussock, "read_all", lambda dev=None: [well])
    assert cli.main(["status"]) == 0
    monkeypatch.setattr(statussock, "read_all", lambda dev=None: [well, sick])
    for argv in (["status"], ["status", "--json"]):
        assert cli.main(argv) == cli.STATUS_PROBLEMS == 3
    assert "vnats8: not connected to NATS (connection refused)" in capsys.readouterr().out
