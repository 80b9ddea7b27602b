#!/usr/bin/env bash
# Provision one host of a vlan-nats network through the systemd units.
# Used by the Vagrantfile and by scripts/vmlab.py (same script, same steps).
#
#   sudo VN_ROLE=hub  VN_HUB=198.18.200.11 VN_ADDRESS=198.18.201.1/24 VN_TOKEN=... scripts/provision.sh
#   sudo VN_ROLE=node VN_HUB=198.18.200.11 VN_ADDRESS=198.18.201.2/24 VN_TOKEN=... scripts/provision.sh
#
# VN_ROLE     hub: run `vlan-nats hub` (vlan-nats-hub.service) and a node; node: a node only
# VN_HUB      the hub's address on the underlay (nodes connect to nats://VN_HUB:4222)
# VN_ADDRESS  this node's address on the virtual LAN (CIDR)
# VN_NETWORK  network name (default lab); the unit is vlan-nats@VN_NETWORK
# VN_TOKEN    the hub's token, shared by all hosts (or VN_TOKEN_FILE)
# VN_SRC      the project (default: this script's parent); with a wheelhouse/ inside,
#             installs from it offline, otherwise builds from source (needs apt)
# VN_PREFIX   where the virtualenv goes (default /opt/vlan-nats)
set -euo pipefail

VN_ROLE=${VN_ROLE:?set VN_ROLE=hub or node}
VN_HUB=${VN_HUB:?set VN_HUB to the hub address}
VN_ADDRESS=${VN_ADDRESS:?set VN_ADDRESS to the node address on the LAN, as CIDR}
VN_NETWORK=${VN_NETWORK:-lab}
VN_SRC=${VN_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
VN_PREFIX=${VN_PREFIX:-/opt/vlan-nats}
if [ -n "${VN_TOKEN_FILE:-}" ]; then VN_TOKEN=$(cat "$VN_TOKEN_FILE"); fi
VN_TOKEN=${VN_TOKEN:?set VN_TOKEN or VN_TOKEN_FILE}
case "$VN_ROLE" in hub|node) ;; *) echo "provision.sh: VN_ROLE must be hub or node" >&2; exit 2;; esac

say() { echo "provision.sh: $*"; }

apt_install() {
  say "installing Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. Python and a virtualenv.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi
command -v ip >/dev/null || apt_install iproute2
[ -x "$VN_PREFIX/bin/python" ] || python3 -m venv "$VN_PREFIX"

# 2. vlan-nats itself.
if [ -d "$VN_SRC/wheelhouse" ]; then
  say "installing from $VN_SRC/wheelhouse (offline)"
  "$VN_PREFIX/bin/pip" install -q --no-index --find-links "$VN_SRC/wheelhouse" vlan-nats
else
  command -v cc >/dev/null || apt_install gcc libc6-dev python3-dev
  say "installing from source $VN_SRC"
  "$VN_PREFIX/bin/pip" install -q "$VN_SRC"
fi
ln -sf "$VN_PREFIX/bin/vlan-nats" /usr/local/bin/vlan-nats
if [ -d /usr/share/bash-completion/completions ]; then
  vlan-nats completion bash > /usr/share/bash-completion/completions/vlan-nats
fi

# 3. Units and configuration.
vlan-nats install-systemd
install -d -m 0750 /etc/vlan-nats
umask 077
printf '%s' "$VN_TOKEN" > /etc/vlan-nats/lab.token
if [ "$VN_ROLE" = hub ]; then
  cat > /etc/vlan-nats/hub.toml <<EOF
listen = "0.0.0.0:4222"
monitor = "127.0.0.1:8222"
token_file = "/etc/vlan-nats/lab.token"
EOF
  systemctl enable -q --now vlan-nats-hub.service
fi
cat > "/etc/vlan-nats/$VN_NETWORK.toml" <<EOF
server = "nats://$VN_HUB:4222"
network = "$VN_NETWORK"
dev = "vnats0"
address = "$VN_ADDRESS"
token_file = "/etc/vlan-nats/lab.token"
EOF
vlan-nats check-config "/etc/vlan-nats/$VN_NETWORK.toml"
systemctl enable -q --now "vlan-nats@$VN_NETWORK.service"

# 4. Wait for the node to be ready (Type=notify: active means ready).
for _ in $(seq 1 120); do
  if systemctl is-active -q "vlan-nats@$VN_NETWORK.service"; then
    say "vlan-nats@$VN_NETWORK is active; vnats0 has $(ip -br addr show dev vnats0 | awk '{print $3}')"
    exit 0
  fi
  sleep 1
done
systemctl status --no-pager "vlan-nats@$VN_NETWORK.service" || true
echo "provision.sh: vlan-nats@$VN_NETWORK did not become active" >&2
exit 1
