#!/usr/bin/env bash
# bench.sh: posguard's benchmark suite. Runs every measurement with `go test
# -bench` (or a small Go program printing benchmark-format lines), keeps the
# raw output and summarises it with benchstat. See scripts/README.md.
#
#   scripts/bench.sh                 # COUNT=5, results in /tmp/posguard-bench/<date>/
#   COUNT=10 OUT=/tmp/b scripts/bench.sh
#   ONLY=opa,backtest scripts/bench.sh   # run some steps only
#
# Steps: decision, decision-agent, opa, decide, durable, scan, scan-agent,
# facts, denylist, ingest, backtest, rss, rss-10m, fanout, chainpush, console, scale;
# ONLY=decision also runs decision-agent, ONLY=rss also rss-10m.
# Each step is bounded by STEP_TIMEOUT (default 15m); a step that fails or
# times out is reported and the others still run. PostgreSQL for the ingest
# step is POSGUARD_TEST_PG (default the local server's "test" database); the
# step is skipped without it.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

COUNT=${COUNT:-5}
STEP_TIMEOUT=${STEP_TIMEOUT:-15m}
OUT=${OUT:-${TMPDIR:-/tmp}/posguard-bench/$(date -u +%Y%m%dT%H%M%SZ)}
ONLY=${ONLY:-}
BENCHSTAT=${BENCHSTAT:-go run golang.org/x/perf/cmd/benchstat@latest}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
failed=()

# want NAME: ONLY is empty, names the step, or names its family (ONLY=scan
# runs scan and scan-agent).
want() {
	[ -z "$ONLY" ] && return 0
	local w
	IFS=, read -ra w <<<"$ONLY"
	for o in "${w[@]}"; do
		[[ "$1" == "$o" || "$1" == "$o"-* ]] && return 0
	done
	return 1
}

# step NAME DIR CMD...: run CMD in DIR with a time bound, tee to $OUT/NAME.txt.
step() {
	local name=$1 dir=$2
	shift 2
	want "$name" || return 0
	echo "== $name: $*"
	local start=$SECONDS
	(cd "$dir" && timeout "$STEP_TIMEOUT" "$@") 2>&1 | tee "$OUT/$name.txt"
	local rc=${PIPESTATUS[0]}
	echo "== $name: exit $rc after $((SECONDS - start))s"
	if [ "$rc" -ne 0 ]; then
		failed+=("$name (exit $rc)")
	fi
}

bench=(go test -run '^$' -count "$COUNT")

{
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
	echo "memory:  $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "go:      $(go version)"
	echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "count:   $COUNT"
} | tee "$OUT/machine.txt"

# Decision latency: PG1 token verify and policy Evaluate on the example
# policy, then the whole agent decision (verify, evaluate, durable commit).
step decision "$ROOT" "${bench[@]}" -bench 'BenchmarkEvaluate|BenchmarkVerifyPG1EdDSA|BenchmarkVerifyPolicy$' \
	./policy ./policy/token ./policy/bundle
step decision-agent "$ROOT" "${bench[@]}" -bench '^BenchmarkDecide$|^BenchmarkDecideParallel8$' ./agent
# The same decision with the rules written in Rego and run by OPA.
step opa "$ROOT/bench" "${bench[@]}" -bench 'BenchmarkDecide|BenchmarkRules' ./opa
# opa_ratio FILE: OPA's time over posguard's for each BenchmarkDecide and
# BenchmarkRules case (quiet, firing), from the median ns/op of the runs.
opa_ratio() {
	awk '$1 ~ /^Benchmark(Decide|Rules)\/(quiet|firing)\/(posguard|opa)(-[0-9]+)?$/ && $4 == "ns/op" {
		name = $1; sub(/-[0-9]+$/, "", name); print name, $3 }' "$1" |
		sort -k1,1 -k2,2g |
		awk 'function fmt(ns) { return ns >= 1e6 ? sprintf("%.2f ms", ns / 1e6) : sprintf("%.1f µs", ns / 1e3) }
		{ v[$1, ++n[$1]] = $2 }
		END {
			for (k in n) {
				c = n[k]
				med[k] = c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
			}
			split("Decide Rules", bs, " ")
			split("quiet firing", cs, " ")
			for (i = 1; i <= 2; i++) for (j = 1; j <= 2; j++) {
				p = "Benchmark" bs[i] "/" cs[j] "/posguard"; o = "Benchmark" bs[i] "/" cs[j] "/opa"
				if (!(p in med) || !(o in med)) continue
				printf "%-6s %-6s posguard %s vs OPA %s: OPA %.1f× slower (median of %d/%d runs)\n",
					bs[i], cs[j], fmt(med[p]), fmt(med[o]), med[o] / med[p], n[p], n[o]
				found++
			}
			if (!found) { print "no BenchmarkDecide/BenchmarkRules results"; exit 1 }
		}'
}
if want opa && [ -s "$OUT/opa.txt" ]; then
	echo "== opa ratio (OPA ns/op over posguard ns/op; Decide = token verify + rules, Rules = rules only)"
	opa_ratio "$OUT/opa.txt" | tee "$OUT/opa-ratio.txt" || failed+=("opa ratio")
fi
# POST /v1/decide against the real agent process, 8 callers over loopback
# HTTP, COUNT runs of 5 s: decisions/s and the callers' p50/p99. DECIDE_BINS
# (NAME=PATH,...) compares binaries in interleaved rounds instead of
# building this checkout.
step decide "$ROOT/bench" go run ./cmd/decide -callers 8 -rounds "$COUNT" ${DECIDE_BINS:+-bin "$DECIDE_BINS"}
# The denylist index: opening a state file with 1,000,000 entries (its
# integrity check included; cpu-ns/op is the process's CPU time) and
# lookups, absent and present.
step denylist "$ROOT" "${bench[@]}" -bench 'BenchmarkOpenDenylist|BenchmarkDenylisted' -benchmem ./agent/state
# Durable decisions per second (bbolt, fsync on): 1 and 8 callers.
step durable "$ROOT" "${bench[@]}" -bench 'BenchmarkCommit' ./agent/state
# Scan pass-through over ptys, with p50/p99.
step scan "$ROOT" "${bench[@]}" -bench 'BenchmarkPipelineLatency' -benchtime 2000x ./firmware-bridge/posout
step scan-agent "$ROOT" "${bench[@]}" -bench 'BenchmarkScanPassThrough' ./agent
# Store facts: a decision committed at R1 until its token is seen at R2
# (the replay window), p50/p99 of 300 facts per run, through the embedded
# broker and a private Mosquitto (skipped without mosquitto). The load
# average is kept with the results: on a shared machine it moves the p99.
if want facts; then
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/facts-load.txt"
fi
step facts "$ROOT" "${bench[@]}" -bench 'BenchmarkFactsPropagation' -benchtime 300x ./agent/hqsync
if want facts; then
	echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/facts-load.txt"
	cat "$OUT/facts-load.txt"
fi
# HQ ingest into PostgreSQL (and bbolt for comparison), batches of 100 into
# the store alone (200 batches per run); then the whole path, 20,000 events
# published QoS 1 by a register client through the embedded broker to HQ,
# stored in PostgreSQL and acked (BenchmarkIngestMQTT, ns/op per event);
# and the same with a rule of every chain rule kind evaluated on the stream
# (BenchmarkIngestMQTTChain), run side by side so the load is shared.
step ingest "$ROOT/bench" sh -c 'go test -run "^$" -count "$1" -bench "BenchmarkIngest$" -benchtime 200x ./ingest; rc=$?
	go test -run "^$" -count "$1" -bench "BenchmarkIngestMQTT(Chain)?$" -benchtime 20000x ./ingest || exit; exit $rc' sh "$COUNT"
# Backtest: 1,000,000 events streamed through parse workers and the replay
# shards (by store) with the example policy.
step backtest "$ROOT" "${bench[@]}" -bench 'BenchmarkBacktest/events=1M' -benchtime 1x -benchmem ./policy/backtest
# The real `posguard agent` process: start to /healthz, RSS idle and after
# one decision, with an empty state file and a 1,000,000-entry denylist
# (RSS_ROUNDS interleaved starts each, default 13), then with 10,000,000
# (RSS10M_ROUNDS, default 3). BASELINE_REF=<git ref> also builds posguard
# from that commit and measures it in the same rounds (bin=baseline), e.g.
# BASELINE_REF=320c44c ONLY=rss scripts/bench.sh.
rss_args=()
if { want rss || want rss-10m; } && [ -n "${BASELINE_REF:-}" ]; then
	echo "== rss: building the baseline posguard from $BASELINE_REF"
	rm -rf "$OUT/baseline-src" && mkdir -p "$OUT/baseline-src"
	if git archive "$BASELINE_REF" | tar -x -C "$OUT/baseline-src" &&
		(cd "$OUT/baseline-src" && go build -o "$OUT/posguard-baseline" ./cmd/posguard); then
		rss_args=(-baseline "$OUT/posguard-baseline")
	else
		failed+=("rss baseline build ($BASELINE_REF)")
	fi
fi
step rss "$ROOT/bench" go run ./cmd/rss -entries 0,1000000 -rounds "${RSS_ROUNDS:-13}" "${rss_args[@]}"
step rss-10m "$ROOT/bench" go run ./cmd/rss -entries 10000000 -rounds "${RSS10M_ROUNDS:-3}" -start-timeout 10m "${rss_args[@]}"
# A policy push applied by 1,000 MQTT agent clients.
step fanout "$ROOT/bench" go run ./cmd/fanout -clients 1000 -pushes "$COUNT"
# From the event that trips a chain rule (account_stores) to the automatic
# denylist entry applied by 1,000 register clients (bbolt HQ store).
step chainpush "$ROOT/bench" go run ./cmd/chainpush -clients 1000 -rounds "$COUNT" -timeout 14m
# The HQ console at chain size: 10,000 registers and 1,000,000 events in
# PostgreSQL (POSGUARD_TEST_PG; the schema posguard_console_bench is filled
# once, minutes, and kept for the next run), each API call a page makes
# (p50/p99 of 20) and each page's first paint and data loaded in Chromium.
step console "$ROOT/bench" go run ./cmd/console -rounds 20
# Chain scale: SCALE_REGISTERS (default 10,000) register sessions, one event
# each every 10 s for 2 minutes and a policy push, on one Mosquitto and on a
# three-node NATS cluster (nats-server built from the version bench/go.mod
# names), in the same run. Once: it takes about 6 minutes.
if want scale; then
	(cd "$ROOT/bench" && go build -o "$OUT/nats-server" github.com/nats-io/nats-server/v2)
	step scale "$ROOT/bench" go run ./cmd/scale -registers "${SCALE_REGISTERS:-10000}" -nats-server "$OUT/nats-server"
fi

echo
echo "== summary (benchstat)"
: >"$OUT/summary.txt"
for f in "$OUT"/*.txt; do
	case $(basename "$f") in machine.txt | summary.txt) continue ;; esac
	grep -qE '^Benchmark' "$f" || continue
	echo "-- $(basename "$f" .txt)" >>"$OUT/summary.txt"
	if ! $BENCHSTAT "$f" >>"$OUT/summary.txt" 2>"$OUT/benchstat.err"; then
		echo "benchstat failed on $f (see $OUT/benchstat.err)"
		failed+=("benchstat $(basename "$f")")
	fi
	echo >>"$OUT/summary.txt"
done
cat "$OUT/machine.txt" "$OUT/summary.txt"
if [ -s "$OUT/opa-ratio.txt" ]; then
	echo "-- opa ratio"
	cat "$OUT/opa-ratio.txt"
fi
echo
echo "results: $OUT"
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED steps: ${failed[*]}"
	exit 1
fi
