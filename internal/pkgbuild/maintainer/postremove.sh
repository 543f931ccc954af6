#!/bin/sh
# posguard-agent: after the files are removed (deb: "remove", "purge",
# "upgrade"...; rpm: 0 erase, 1 upgrade).
#
# A removal keeps the configuration and the state file (the register's
# seen tokens and its events not yet acknowledged by HQ); a deb purge
# deletes both, keys included. The posguard user stays, as Debian
# packages leave their system users: files it owned may remain elsewhere.
set -e

case "$1" in
purge)
	rm -rf /etc/posguard /var/lib/posguard
	;;
esac
case "$1" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
esac
exit 0
