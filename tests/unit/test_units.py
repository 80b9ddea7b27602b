"""The systemd units: rendered for this installation, verified by systemd."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlan_nats import units
from vlan_nats.errors import ConfigError


def test_render_points_at_this_installation():
    text = units.render("vlan-nats@.service", exe="/opt/vn/bin/vlan-nats")
    assert "ExecStart=/opt/vn/bin/vlan-nats up --config /etc/vlan-nats/%i.toml" in text
    assert "Type=notify" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text
    assert "DeviceAllow=/dev/net/tun rw" in text and "@VLAN_NATS@" not in text
    hub = units.render("vlan-nats-hub.service", exe="/opt/vn/bin/vlan-nats")
    assert "ExecStart=/opt/vn/bin/vlan-nats hub --config /etc/vlan-nats/hub.toml" in hub


ANALYZE = ("systemd-analyze", "scripts/test.sh (package systemd)")


def test_systemd_analyze_verify(tmp_path, command):
    tool = command(*ANALYZE)
    exe = os.path.join(os.path.dirname(sys.executable), "vlan-nats")
    assert os.access(exe, os.X_OK), exe
    paths = []
    for name, as_name in (
        ("vlan-nats@.service", "vlan-nats@lab.service"),
        ("vlan-nats-hub.service", "vlan-nats-hub.service"),
    ):
        p = tmp_path / as_name
        p.write_text(units.render(name, exe=exe))
        paths.append(str(p))
    r = subprocess.run([tool, "verify", *paths], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_systemd_analyze_catches_a_broken_unit(tmp_path, command):
    """The check above can fail: a unit naming a missing binary does."""
    tool = command(*ANALYZE)
    p = tmp_path / "vlan-nats@lab.service"
    p.write_text(units.render("vlan-nats@.service", exe="/nonexistent/vlan-nats"))
    r = subprocess.run([tool, "verify", str(p)], capture_output=True, text=True)
    assert r.returncode != 0 and "/nonexistent/vlan-nats" in r.stderr


def test_install_writes_units_and_config_dir(tmp_path):
    written = units.install(str(tmp_path), reload=False, config_dir=tmp_path / "etc")
    assert sorted(p.name for p in written) == sorted(units.UNITS)
    assert (tmp_path / "etc").is_dir()
    assert "@VLAN_NATS@" not in (tmp_path / "vlan-nats@.service").read_text()


def test_install_elsewhere_leaves_etc_alone(tmp_path, monkeypatch):
    """--dir somewhere else (or a failed write) must not create /etc/vlan-nats."""
    etc = tmp_path / "etc-vlan-nats"
    monkeypatch.setattr(units, "CONFIG_DIR", etc)
    units.install(str(tmp_path), reload=False)
    assert not etc.exists()
    (tmp_path / "a-file").write_text("")
    unwritable = str(tmp_path / "a-file" / "units")  # a write that fails
    monkeypatch.setattr(units, "UNIT_DIR", unwritable)
    with pytest.raises(ConfigError):
        units.install(unwritable, reload=False)
    assert not etc.exists()
    monkeypatch.setattr(units, "UNIT_DIR", str(tmp_path))
    units.install(str(tmp_path), reload=False)
    assert etc.is_dir()


def test_render_loosens_only_what_hides_the_installation():
    def render(*paths):
        ps = [Path(p) for p in paths]
        return units.render("vlan-nats@.service", exe="/x/vlan-nats", paths=ps)

    plain = render("/opt/vlan-nats/bin/vlan-nats", "/usr/lib/python3")
    assert "\nProtectHome=yes\n" in plain and "\nPrivateTmp=yes\n" in plain
    home = render("/opt/vlan-nats/bin/vlan-nats", "/root/.pyenv/versions/3.11/bin/python3")
    assert "\nProtectHome=read-only\n" in home and "\nPrivateTmp=yes\n" in home
    tmp = render("/tmp/clone/.venv/bin/vlan-nats")
    assert "\nProtectHome=yes\n" in tmp and "\nPrivateTmp=no\n" in tmp
    assert (
        units.loosened_for([Path("/home/ann/v/bin/vlan-nats")])
        .notes()[-1]
        .startswith("for production, install under /opt/vlan-nats")
    )


def test_install_systemd_dir_that_does_not_exist_yet(tmp_path, capsys):
    from vlan_nats import cli

    target = tmp_path / "staging" / "systemd"
    assert cli.main(["install-systemd", "--dir", str(target), "--no-reload"]) == 0
    assert sorted(p.name for p in target.iterdir()) == sorted(units.UNITS)
    assert f"installed {target}/vlan-nats@.service" in capsys.readouterr().out
