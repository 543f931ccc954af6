#!/bin/sh
# Prints the path of a `go build -overlay` file for test binaries that run
# under Wine 8 (Debian 12's). Wine 8 answers NtSetInformationFile's
# FileDispositionInformationEx with STATUS_NOT_IMPLEMENTED where Windows
# before 10 1607 answers STATUS_INVALID_INFO_CLASS; Go's os.RemoveAll falls
# back to the older call only on the latter, so every t.TempDir cleanup
# fails under Wine ("unlinkat ...: Invalid function") though the code under
# test is right. The overlay is the toolchain's own
# internal/syscall/windows/at_windows.go with STATUS_NOT_IMPLEMENTED added
# to that fallback. Only for CI's Wine runs; nothing built for a register
# uses it.
#
#   GOOS=windows go test -overlay "$(scripts/wine/overlay.sh)" -exec scripts/wine-exec.sh ./...
set -eu
src="$(go env GOROOT)/src/internal/syscall/windows/at_windows.go"
dir="${TMPDIR:-/tmp}/posguard-wine-overlay"
mkdir -p "$dir"
sed 's|^\tcase STATUS_INVALID_INFO_CLASS, |\tcase NTStatus(0xC0000002), STATUS_INVALID_INFO_CLASS, // 0xC0000002: STATUS_NOT_IMPLEMENTED, Wine 8\n\t\t|' "$src" >"$dir/at_windows.go"
grep -q 'NTStatus(0xC0000002)' "$dir/at_windows.go" || {
	echo "overlay.sh: $src has changed; the Wine fallback patch no longer applies" >&2
	exit 1
}
printf '{"Replace": {"%s": "%s"}}\n' "$src" "$dir/at_windows.go" >"$dir/overlay.json"
echo "$dir/overlay.json"
