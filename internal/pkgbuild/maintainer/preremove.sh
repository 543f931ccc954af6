#!/bin/sh
# posguard-agent: before the files are removed (deb: "remove", or "upgrade"
# on the way to a new version; rpm: 0 erase, 1 upgrade). Only a removal
# stops and disables the agent; an upgrade restarts it in postinstall.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now posguard-agent.service || true
	fi
	;;
esac
exit 0
