#!/usr/bin/env bash
# reliability.sh: posguard's reliability suite. See scripts/README.md.
#
#   scripts/reliability.sh              # every fuzz target 60s, then the fault tests
#   FUZZTIME=3s scripts/reliability.sh  # a quick pass
#   ONLY=broker,serial scripts/reliability.sh
#
# Steps:
#   fuzz     each FuzzXxx in the module for FUZZTIME (default 60s); a
#            crasher is kept by go test in the package's testdata/fuzz/FuzzXxx/
#            and listed at the end (there must be none);
#   sigkill  the agent state file under SIGKILL at random points
#            (agent/state TestSurvivesSIGKILL), and the agent daemon killed
#            under load and restarted (cmd/posguard TestAgentSurvivesSIGKILL;
#            a TestCrash in ./agent is run instead if that is what exists);
#   broker   the MQTT broker killed and restarted under load;
#   hqdb     HQ restarted under load while its PostgreSQL server is
#            restarted too: a private server made for the step (as root,
#            with the machine's PostgreSQL binaries), or the one named by
#            POSGUARD_TEST_PG with POSGUARD_PG_RESTART_CMD; without either,
#            only HQ and its connection restart;
#   hqsession HQ restarted 20 times (HQ_RESTART_ROUNDS) over 10,000 events
#            queued in its broker session each time (hq
#            TestRestartDeliversQueuedSession; go test runs 3 rounds);
#   serial   the scanner's serial port unplugged and replugged under load.
#   attacks  every attack of the security review (issue "Identity and
#            authorization everywhere") replayed by its test: one line per
#            attack, "refused" when the test passes (the attack did not get
#            through), "GOT THROUGH" when it fails.
# Each prints what it tried and what was lost (must be nothing). Exit 1 if
# any step failed or a crasher was found.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

FUZZTIME=${FUZZTIME:-60s}
ONLY=${ONLY:-}
STEP_TIMEOUT=${STEP_TIMEOUT:-10m}
OUT=${OUT:-${TMPDIR:-/tmp}/posguard-reliability/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
results=()
failed=0

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

record() { # record NAME RC NOTE
	local status=ok
	if [ "$2" -ne 0 ]; then
		status="FAILED (exit $2)"
		failed=1
	fi
	results+=("$(printf '%-44s %s %s' "$1" "$status" "$3")")
}

# run NAME DIR CMD...: run with a time bound, output to the terminal and $OUT/NAME.log.
run() {
	local name=$1 dir=$2
	shift 2
	echo "== $name: $*"
	(cd "$dir" && timeout "$STEP_TIMEOUT" "$@") 2>&1 | tee "$OUT/$name.log"
	return "${PIPESTATUS[0]}"
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(go version)"

if want fuzz; then
	before=$(find . -path ./bench -prune -o -path '*/testdata/fuzz/*' -type f -print | sort)
	# "dir name" for every fuzz target of the main module.
	targets=$(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . |
		grep -v '^./bench/' | sed -E 's#^\./(.*)/[^/]*_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort -u)
	n=$(echo "$targets" | grep -c .)
	echo "== fuzz: $n targets, $FUZZTIME each"
	while read -r dir name; do
		[ -n "$dir" ] || continue
		log="$OUT/fuzz-${dir//\//_}-$name.log"
		(timeout "$STEP_TIMEOUT" go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "./$dir") >"$log" 2>&1
		rc=$?
		execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1)
		record "fuzz $dir $name" "$rc" "(${execs:-no execs reported})"
		echo "  $dir $name: exit $rc, ${execs:-?}"
		[ "$rc" -eq 0 ] || tail -20 "$log"
	done <<<"$targets"
	after=$(find . -path ./bench -prune -o -path '*/testdata/fuzz/*' -type f -print | sort)
	new=$(comm -13 <(echo "$before") <(echo "$after"))
	if [ -n "$new" ]; then
		echo "== fuzz: NEW CRASHERS kept in testdata (commit them with the fix):"
		echo "$new"
		record "fuzz crashers" 1 "$(echo "$new" | grep -c .) new files"
	else
		echo "== fuzz: no crasher found"
		record "fuzz crashers" 0 "none"
	fi
fi

if want sigkill; then
	run sigkill-state "$ROOT" go test -count=1 -run '^TestSurvivesSIGKILL$' -v ./agent/state
	record "SIGKILL loop: agent/state" $? "(committing process killed at random points, reopened)"
	# The daemon's own test: the posguard binary killed mid-stream of
	# decisions over its local API and restarted.
	if grep -qs '^func TestAgentSurvivesSIGKILL' cmd/posguard/*_test.go; then
		run sigkill-agent "$ROOT" go test -count=1 -run '^TestAgentSurvivesSIGKILL$' -v ./cmd/posguard
		record "SIGKILL loop: agent daemon" $? "(posguard agent killed under load, restarted)"
	elif grep -qs '^func TestCrash' agent/*_test.go; then
		run sigkill-agent "$ROOT" go test -count=1 -run '^TestCrash' -v ./agent/
		record "SIGKILL loop: agent daemon" $? ""
	else
		echo "== sigkill-agent: skipped: not available (no daemon crash test yet)"
		results+=("$(printf '%-44s %s' "SIGKILL loop: agent daemon" "skipped: not available")")
	fi
fi

if want broker; then
	run broker "$ROOT/bench" env POSGUARD_RELIABILITY=1 go test -count=1 -run '^TestReliabilityBrokerRestart$' -v ./reliability
	record "broker killed and restarted under load" $? ""
fi
# private_pg starts a throw-away PostgreSQL server for the hqdb step, so the
# database server itself can be restarted under load without touching a
# shared one. It sets POSGUARD_TEST_PG and POSGUARD_PG_RESTART_CMD.
private_pg() {
	local bin port dir
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ "$(id -u)" -eq 0 ] && [ -x "$bin/initdb" ] && id postgres >/dev/null 2>&1 || return 1
	dir=$(mktemp -d /tmp/posguard-pg.XXXXXX)
	chown postgres "$dir"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	su postgres -s /bin/sh -c "$bin/initdb -D $dir/data -A trust -U postgres" >"$OUT/pg-init.log" 2>&1 || return 1
	su postgres -s /bin/sh -c "$bin/pg_ctl -D $dir/data -l $dir/log -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -w start" >>"$OUT/pg-init.log" 2>&1 || return 1
	su postgres -s /bin/sh -c "$bin/createdb -h 127.0.0.1 -p $port test" >>"$OUT/pg-init.log" 2>&1 || return 1
	PG_STOP="su postgres -s /bin/sh -c '$bin/pg_ctl -D $dir/data -m fast -w stop'; rm -rf $dir"
	export POSGUARD_TEST_PG="postgres://postgres@127.0.0.1:$port/test?sslmode=disable"
	export POSGUARD_PG_RESTART_CMD="su postgres -s /bin/sh -c '$bin/pg_ctl -D $dir/data -m fast -w restart' >/dev/null"
	echo "== hqdb: private PostgreSQL server on 127.0.0.1:$port ($dir)"
}

if want hqdb; then
	PG_STOP=""
	if [ -z "${POSGUARD_PG_RESTART_CMD:-}" ] && ! private_pg; then
		echo "== hqdb: no private PostgreSQL server (needs root and the PostgreSQL binaries; see $OUT/pg-init.log): only HQ and its connection restart"
	fi
	run hqdb "$ROOT/bench" env POSGUARD_RELIABILITY=1 go test -count=1 -run '^TestReliabilityHQRestart$' -v ./reliability
	record "HQ and its database server restarted under load" $? ""
	[ -n "$PG_STOP" ] && sh -c "$PG_STOP" >/dev/null 2>&1
fi
if want hqsession; then
	run hqsession "$ROOT" env POSGUARD_HQ_RESTART_ROUNDS="${HQ_RESTART_ROUNDS:-20}" go test -count=1 -run '^TestRestartDeliversQueuedSession$' -v ./hq
	record "HQ restarted over its queued session" $? "(${HQ_RESTART_ROUNDS:-20} rounds of 10,000 queued events)"
fi
if want serial; then
	run serial "$ROOT/bench" env POSGUARD_RELIABILITY=1 go test -count=1 -run '^TestReliabilitySerialUnplug$' -v ./reliability
	record "serial unplug/replug under load" $? ""
fi

if want attacks; then
	# attack | package | test regexp (anchored by go test -run)
	while IFS='|' read -r what pkg tests; do
		[ -n "$what" ] || continue
		log="$OUT/attack-$(echo "$what" | tr -c 'A-Za-z0-9' '_' | cut -c1-60).log"
		(cd "$ROOT" && POSGUARD_INTEGRATION=${POSGUARD_INTEGRATION:-1} timeout "$STEP_TIMEOUT" go test -count=1 -run "$tests" $pkg) >"$log" 2>&1
		rc=$?
		if [ "$rc" -eq 0 ]; then outcome=refused; else outcome="GOT THROUGH (see $log)"; failed=1; fi
		results+=("$(printf 'attack: %-70s %s' "$what" "$outcome")")
		echo "  $what: $outcome"
	done <<'ATTACKS'
anyone on the network changes the HQ denylist or reads events|./hq|^(TestAPINeedsAuthentication|TestDenylistChangeIsRecorded)$
HQ listens beyond loopback without authentication|./cmd/posguard|^TestHQCLIArgs$
a web page POSTs text/plain or rebinds DNS to the agent, display or HQ|./agent ./hq ./display|^(TestAPIRefusesWebPages|TestHostCheckBeyondLoopback|TestResolveNeedsJSON)$
1,000 slow-body connections hold an HTTP server|./agent ./hq ./display ./internal/httpserve|^(TestSlowClientsCannotHoldTheAPI|TestDisplaySlowClients|TestSlowBodiesAreCutOffAndCapped|TestSlowHeadersAreCutOff)$
a decide commits after its client gave up|./agent ./agent/state|^(TestDecideAbandonedStoresNothing|TestCommitAbandonedWhileWaiting)$
cookie-less GETs evict the manager's display session|./display ./display/auth|^(TestCookielessFloodKeepsLogin|TestCookielessRequestsStoreNothing|TestStatelessSessionRefusesForgedCookies)$
a token over 1 KiB probes the register unseen by HQ|./agent|^(TestOversizedTokenRecorded|TestOversizedTokenFromScanner)$
40 concurrent wrong manager PINs from rotating 127.x addresses|./agent|^(TestPINGuessing|TestRightPINsDoNotCount)$
an attacker's PIN guesses lock out the manager at the display|./display|^(TestPINGuessesLimitedPerDevice|TestPINGuessesLoopbackIsOneDevice)$
a policy bundle issued in 2030 or with version 2^63-1 blocks updates|./policy/bundle ./agent/hqsync ./agent|^(TestPolicyVersionCannotBlockUpdates|TestPolicyPushAppliedAndRefused|TestStoredPolicyOutOfBoundsNotUsed)$
a replaced or restored HQ store makes registers skip denylist changes|./agent/hqsync ./agent/state ./hq/store|^(TestDenylistAcrossHQStores|TestDenylist|TestDenylistWithoutEpochResyncs|TestDenylistEpochKept)$
a unit price of 4.6e18 wraps the total and allows the sale|./policy ./agent|^(TestLintBounds|TestEvaluateHugePrice|TestSumsOverflow|TestCartBeyondBoundsDenied)$
anonymous or self-declared clients on the embedded broker|./hq/broker ./cmd/posguard|^(TestAuthentication|TestPasswordFileOverBroker|TestCertificateIdentity|TestHQEmbeddedBrokerAuthenticates)$
a register takes another client's id and its queued PIN command|./hq/broker|^TestClientIDCannotTakeOverASession$
a register joins HQ's shared subscription and stalls ingest|./hq/broker|^TestRegisterCannotJoinHQsShareGroup$
a will published on another identity's topic|./hq/broker|^TestWillOnForeignTopicRefused$
a register forges another till's facts or reads another store's|./hq/broker|^TestFactsOverBroker$
the same attacks on Mosquitto with the shipped TLS and ACL config|./scripts/mosquitto|^TestShippedBrokerConfig$
HQ acknowledges queued messages before storing them|./internal/mqttconn ./hq ./agent/hqsync|^(TestQueuedSessionReachesHandlerBeforeOnConnect|TestRestartDeliversQueuedSession|TestCommandWhileDownArrivesAfterRestart)$
ATTACKS
fi

echo
echo "== summary"
printf '%s\n' "${results[@]}" | tee "$OUT/summary.txt"
echo "logs: $OUT"
exit $failed
