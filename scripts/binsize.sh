#!/usr/bin/env bash
# Builds posguard-agent, the register's binary, for every register target
# as a release does (CGO off, -trimpath, -ldflags='-s -w': no symbol table,
# no DWARF) and prints the size of each, as the README's table.
#
#   scripts/binsize.sh                    # the table
#   scripts/binsize.sh --budget 18000000  # and fail if linux/amd64 is larger
set -euo pipefail
cd "$(dirname "$0")/.."
budget=""
if [ "${1:-}" = "--budget" ]; then
	budget=$2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| target | posguard-agent, stripped |"
echo "|---|---|"
for target in linux/amd64 linux/arm64 linux/arm linux/386 windows/amd64 windows/386; do
	goos=${target%/*} goarch=${target#*/}
	bin="$out/posguard-agent-$goos-$goarch"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOARM=7 go build -trimpath -ldflags='-s -w' -o "$bin" ./cmd/posguard-agent
	size=$(stat -c %s "$bin")
	label=$target
	[ "$target" = linux/arm ] && label="linux/arm (GOARM=7)"
	printf '| %s | %s bytes (%s MB) |\n' "$label" "$size" "$(awk -v s="$size" 'BEGIN{printf "%.1f", s/1e6}')"
	if [ "$target" = linux/amd64 ] && [ -n "$budget" ] && [ "$size" -gt "$budget" ]; then
		echo "posguard-agent for linux/amd64 is $size bytes, over its budget of $budget" >&2
		exit 1
	fi
done
