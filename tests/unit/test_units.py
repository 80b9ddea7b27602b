"""The systemd units: rendered for this installation, verified by systemd."""

import os
import subprocess
import sys

from vlan_nats import units


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
