#!/bin/sh
# posguard-agent: after the files are unpacked, on install and on upgrade
# (deb: "configure" [old version]; rpm: 1 install, 2 upgrade).
#
# The posguard system user is made here and the directories handed to it
# here, not by owners in the package: on a first install the user does not
# exist yet when the files are unpacked.
set -e

case "$1" in
abort-*) exit 0 ;; # deb: a failed upgrade is being undone; nothing to set up
esac

if ! getent group posguard >/dev/null; then
	groupadd --system posguard
fi
if ! getent passwd posguard >/dev/null; then
	useradd --system --gid posguard --home-dir /var/lib/posguard --no-create-home \
		--shell /usr/sbin/nologin --comment "posguard agent" posguard
fi
# Serial ports (/dev/ttyS*, ttyACM*, ttyUSB*) belong to dialout.
if getent group dialout >/dev/null; then
	usermod --append --groups dialout posguard
fi

# The configuration holds the register's identity and the paths of its
# keys: readable by the agent, writable by root only.
chown root:posguard /etc/posguard
chmod 0750 /etc/posguard
if [ -f /etc/posguard/agent.yaml ]; then
	chown root:posguard /etc/posguard/agent.yaml
	chmod 0640 /etc/posguard/agent.yaml
fi
chown posguard:posguard /var/lib/posguard
chmod 0750 /var/lib/posguard

# Not enabled or started on install: the example configuration must be
# edited first (posguard-agent agent --check --config /etc/posguard/agent.yaml).
# An upgrade restarts a running agent on the new binary.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	systemctl try-restart posguard-agent.service || true
fi
exit 0
