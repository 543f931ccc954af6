#!/bin/sh
# Install the posguard register agent as a systemd service, by hand. On
# Debian/Ubuntu and RHEL/Fedora registers prefer the posguard-agent .deb or
# .rpm (scripts/release.sh makes them; README "Installing on a register"):
# same user, directories and unit, the binary in /usr/bin.
#
#   sudo scripts/install-agent.sh [path/to/posguard]
#
# Idempotent: it creates the posguard user (member of dialout for the serial
# ports), /etc/posguard and /var/lib/posguard, installs the binary, the
# example configuration (only if none exists) and the unit, and reloads
# systemd. It does not start the service: edit /etc/posguard/agent.yaml,
# check it with `posguard agent --check`, then
#   systemctl enable --now posguard-agent
set -eu

if [ "$(id -u)" -ne 0 ]; then
	echo "install-agent.sh: must run as root" >&2
	exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../posguard}
if [ ! -x "$bin" ]; then
	echo "install-agent.sh: no posguard binary at $bin (build it: go build -o posguard ./cmd/posguard)" >&2
	exit 1
fi

if ! getent group posguard >/dev/null; then
	groupadd --system posguard
fi
if ! getent passwd posguard >/dev/null; then
	useradd --system --gid posguard --groups dialout --home-dir /var/lib/posguard \
		--no-create-home --shell /usr/sbin/nologin --comment "posguard agent" posguard
else
	usermod --append --groups dialout posguard
fi

install -d -m 0750 -o root -g posguard /etc/posguard
install -d -m 0750 -o posguard -g posguard /var/lib/posguard
install -m 0755 -o root -g root "$bin" /usr/local/bin/posguard

if [ ! -e /etc/posguard/agent.yaml ]; then
	install -m 0640 -o root -g posguard "$here/agent.example.yaml" /etc/posguard/agent.yaml
	echo "installed /etc/posguard/agent.yaml from the example: edit it before starting"
else
	echo "kept the existing /etc/posguard/agent.yaml"
fi
if [ ! -e /etc/posguard/account.key ]; then
	echo "note: /etc/posguard/account.key is missing; copy the chain-wide account key there (mode 0640, group posguard)"
fi

install -m 0644 -o root -g root "$here/posguard-agent.service" /etc/systemd/system/posguard-agent.service
systemctl daemon-reload
echo "installed posguard-agent.service; enable it with: systemctl enable --now posguard-agent"
