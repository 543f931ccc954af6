#!/bin/sh
# go test -exec wrapper: runs a windows/amd64 test binary under Wine
# (Debian's wine64), for the Windows legs of .ci/run:
#
#   GOOS=windows GOARCH=amd64 go test -exec scripts/wine-exec.sh ./policy/...
#
# The Wine prefix (its C: drive and registry) is made once, under
# $WINEPREFIX or ~/.cache/posguard-wine, and kept: creating one takes about
# a minute. Wine 8 lacks bcryptprimitives.dll, which Go programs need at
# start; the prefix gets the forwarder of scripts/wine/bcryptprimitives.def
# (needs x86_64-w64-mingw32-dlltool and -ld, Debian's
# binutils-mingw-w64-x86-64). Wine's debug chatter is off; the output and
# exit status are the test binary's.
set -e
here=$(cd "$(dirname "$0")" && pwd)
: "${WINEPREFIX:=${XDG_CACHE_HOME:-$HOME/.cache}/posguard-wine}"
export WINEPREFIX
export WINEDEBUG="${WINEDEBUG:--all}"
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || wine=$(command -v wine64 || command -v wine)
export WINELOADER="$wine"
sys32="$WINEPREFIX/drive_c/windows/system32"
setup() {
	if [ ! -e "$WINEPREFIX/system.reg" ]; then
		"$wine" wineboot --init >/dev/null 2>&1 || true
		"${WINESERVER:-wineserver}" -w 2>/dev/null || /usr/lib/wine/wineserver64 -w 2>/dev/null || true
	fi
	if [ ! -e "$sys32/bcryptprimitives.dll" ] && ! "$wine" --version | grep -qE 'wine-(9|[1-9][0-9])\.'; then
		tmp=$(mktemp -d)
		x86_64-w64-mingw32-dlltool --def "$here/wine/bcryptprimitives.def" --output-exp "$tmp/bcp.exp" --dllname bcryptprimitives.dll
		# -e 0: no DllMain, a pure forwarder has nothing to initialise.
		x86_64-w64-mingw32-ld --dll -e 0 -o "$tmp/bcryptprimitives.dll" "$tmp/bcp.exp"
		cp "$tmp/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
		rm -rf "$tmp"
	fi
}
# go test runs several test binaries at once: one of them sets up.
mkdir -p "$WINEPREFIX"
(
	flock 9
	setup
) 9>"$WINEPREFIX.lock"
exec "$wine" "$@"
