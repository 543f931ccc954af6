#!/usr/bin/env bash
# Build the release artifacts of the current commit into dist/.
# Run with -h for help.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/release.sh [-h] [--check] [--out DIR] [--targets LIST]

Builds the release of the commit checked out (HEAD) into dist/:

  posguard_OS_ARCH[.exe]        the all-in-one binary, every target
  posguard-agent_OS_ARCH[.exe]  the register's binary, every target
  posguard-agent_*.deb, .rpm    packages of the agent for every linux target
  SHA256SUMS                    sha256sum of each of the above

Targets: linux/amd64 linux/arm64 linux/arm (GOARM=7, named linux_armv7)
linux/386 windows/amd64 windows/386.

Builds are reproducible: each is made in a clean clone of HEAD (uncommitted
changes are NOT in the release), with CGO_ENABLED=0, -trimpath (no build
paths), -buildvcs=true (module version, revision and commit time stamped),
-ldflags "-s -w" (stripped) and the build date from SOURCE_DATE_EPOCH
(default: the commit time), never the clock. Package file times are the same
SOURCE_DATE_EPOCH. So one commit always gives the same SHA256SUMS.

Options:
  -h, --help        this help
  --check           build everything a second time, in a clone at another
                    path with an empty Go build cache, and fail unless every
                    artifact has the same SHA-256 as in the first build
  --out DIR         where the artifacts go (default: dist/ in the repository;
                    its previous content is replaced)
  --targets LIST    comma-separated GOOS/GOARCH subset of the targets, e.g.
                    linux/amd64,windows/amd64 (default: all)

Environment:
  SOURCE_DATE_EPOCH  build date, Unix seconds (default: HEAD's commit time)

One line is printed per artifact as it is written.
EOF
}

all_targets="linux/amd64 linux/arm64 linux/arm linux/386 windows/amd64 windows/386"
check=false
out=
targets=$all_targets
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--check) check=true ;;
	--out) [ $# -ge 2 ] || { echo "release.sh: --out needs a directory" >&2; exit 2; }; out=$2; shift ;;
	--out=*) out=${1#--out=} ;;
	--targets) [ $# -ge 2 ] || { echo "release.sh: --targets needs a list" >&2; exit 2; }; targets=${2//,/ }; shift ;;
	--targets=*) targets=${1#--targets=}; targets=${targets//,/ } ;;
	*) echo "release.sh: unknown argument $1 (see -h)" >&2; exit 2 ;;
	esac
	shift
done
for t in $targets; do
	case " $all_targets " in
	*" $t "*) ;;
	*) echo "release.sh: unknown target $t; the targets are: $all_targets" >&2; exit 2 ;;
	esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${out:-$repo/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rev=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain)" ]; then
	echo "release.sh: warning: uncommitted changes are not in the release (it is built from $rev)" >&2
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct "$rev")}
case "$SOURCE_DATE_EPOCH" in
'' | *[!0-9]*) echo "release.sh: SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH is not a count of seconds" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/posguard-release.XXXXXX")
trap 'rm -rf "$work"' EXIT

# clone DIR: a clean checkout of HEAD with its own .git, so that the go
# command stamps the VCS information (it does not from a git worktree) and
# nothing uncommitted gets in.
clone() {
	git clone --quiet --shared --no-checkout "$(git rev-parse --path-format=absolute --git-common-dir)" "$1"
	git -C "$1" -c advice.detachedHead=false checkout --quiet --detach "$rev"
}

# progress FILE: the line printed for each artifact written.
progress() {
	awk -v f="${1##*/}" -v s="$(stat -c %s "$1")" 'BEGIN { printf "release: %-42s %6.1f MiB\n", f, s / 1048576 }'
}

# build SRC DEST: every artifact of the commit from the clone SRC into DEST,
# then DEST/SHA256SUMS.
build() {
	local src=$1 dest=$2 t goos goarch name suffix
	mkdir -p "$dest"
	for t in $targets; do
		goos=${t%/*} goarch=${t#*/}
		suffix=$goarch
		[ "$goarch" = arm ] && suffix=armv7
		for cmd in posguard posguard-agent; do
			name=${cmd}_${goos}_${suffix}
			[ "$goos" = windows ] && name=$name.exe
			(cd "$src" && CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOARM=7 go build \
				-trimpath -buildvcs=true \
				-ldflags "-s -w -X github.com/posguard/posguard/internal/version.sourceDateEpoch=$SOURCE_DATE_EPOCH" \
				-o "$dest/$name" "./cmd/$cmd")
			progress "$dest/$name"
		done
		if [ "$goos" = linux ]; then
			(cd "$src" && "$work/pkg" -out "$dest" "$dest/posguard-agent_${goos}_${suffix}") |
				while read -r pkg; do progress "$pkg"; done
		fi
	done
	(cd "$dest" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort | xargs sha256sum -- >SHA256SUMS)
	echo "release: SHA256SUMS ($(wc -l <"$dest/SHA256SUMS") artifacts)"
}

echo "release: $rev, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH ($(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)), targets: $targets"
clone "$work/src"
# The packaging tool (scripts/pkg) is no artifact: built once.
(cd "$work/src" && go build -trimpath -o "$work/pkg" ./scripts/pkg)
build "$work/src" "$work/dist"

if $check; then
	# Another path, another (empty) build cache: nothing may depend on
	# where or whether it was built before.
	echo "release: --check: building again in another directory with an empty build cache"
	clone "$work/again/some/other/path"
	GOCACHE=$work/gocache build "$work/again/some/other/path" "$work/dist2"
	if ! diff -u "$work/dist/SHA256SUMS" "$work/dist2/SHA256SUMS"; then
		echo "release: --check: FAILED: the two builds differ (above)" >&2
		exit 1
	fi
	echo "release: --check: reproducible: $(wc -l <"$work/dist/SHA256SUMS") artifacts with the same SHA-256 in both builds"
fi

# Replace the previous release only now that this one is whole; nothing
# else in DIR is touched.
if [ -f "$out/SHA256SUMS" ]; then
	(cd "$out" && awk '{ sub(/^[0-9a-f]+ [ *]/, ""); print }' SHA256SUMS | while read -r f; do rm -f -- "$f"; done && rm -f SHA256SUMS)
fi
mv "$work/dist"/* "$out"/
echo "release: $(wc -l <"$out/SHA256SUMS") artifacts and SHA256SUMS in $out"
