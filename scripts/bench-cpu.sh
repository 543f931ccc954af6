#!/usr/bin/env bash
# CPU time per Evaluate before and after a change, for a loaded machine
# where wall-clock benchmarks say nothing: each policy test binary runs a
# long and a short -benchtime of each benchmark under `perf stat -e
# task-clock`; the difference over the difference in operations cancels
# start-up and setup. Before and after alternate, ROUNDS rounds, and
# benchstat compares them.
#
#   scripts/bench-cpu.sh BASE_COMMIT [BENCHMARKS_REGEX] [ROUNDS]
#
# PKG (default ./policy) picks the package, SUB a sub-benchmark of each
# benchmark, LONG and SHORT the operations of the two runs (default 20000
# and 2000); the backtest's CPU time per 10,000 events, for instance:
#
#   PKG=./policy/backtest SUB=events=10k LONG=4 SHORT=1 \
#     scripts/bench-cpu.sh BASE_COMMIT '^BenchmarkBacktest$'
#
# Needs perf and benchstat (go install golang.org/x/perf/cmd/benchstat@latest).
set -euo pipefail
base=${1:?usage: scripts/bench-cpu.sh BASE_COMMIT [REGEX] [ROUNDS]}
benches=${2:-'^Benchmark(Evaluate|EvaluateNoExpr|EvaluateFiring)$'}
rounds=${3:-6}
pkg=${PKG:-./policy}
sub=${SUB:+/^$SUB\$}
long=${LONG:-20000}
short=${SHORT:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git -C "$root" archive "$base" | tar -x -C "$work" --one-top-level=before
(cd "$work/before" && go test -c -o "$work/before.test" "$pkg")
(cd "$root" && go test -c -o "$work/after.test" "$pkg")
names=$("$work/after.test" -test.list "$benches")

cpu() { # dir binary benchmark ops -> task-clock msec
	(cd "$1" && perf stat -x, -e task-clock "$2" -test.run XXX -test.bench "^$3\$$sub" \
		-test.benchtime "${4}x" 2>&1 >/dev/null | awk -F, '/task-clock/ {print $1}')
}
one() { # dir binary benchmark out
	local l s
	l=$(cpu "$1" "$2" "$3" $long)
	s=$(cpu "$1" "$2" "$3" $short)
	awk -v l="$l" -v s="$s" -v n=$((long - short)) -v b="$3" \
		'BEGIN {printf "%s-2 %d %.1f cpu-ns/op\n", b, n, (l - s) * 1e6 / n}' >>"$4"
}
for i in $(seq "$rounds"); do
	for b in $names; do
		if "$work/before.test" -test.list "^$b\$" | grep -q .; then
			if ((i % 2)); then
				one "$work/before/$pkg" "$work/before.test" "$b" "$work/before.txt"
				one "$root/$pkg" "$work/after.test" "$b" "$work/after.txt"
			else
				one "$root/$pkg" "$work/after.test" "$b" "$work/after.txt"
				one "$work/before/$pkg" "$work/before.test" "$b" "$work/before.txt"
			fi
		fi
	done
done
benchstat "$work/before.txt" "$work/after.txt"
