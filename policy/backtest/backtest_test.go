package backtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

var update = flag.Bool("update", false, "rewrite the fixture and golden files")

const (
	chainDefault = "../testdata/unscored.yaml" // the example before scores (issue 16)
	scored       = "../testdata/chain-default.yaml"
	lenient      = "testdata/lenient-2019.yaml"
	fixture      = "testdata/7pay.jsonl"
)

func load(t testing.TB, path string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update and review the diff)\n--- got\n%s", path, got)
	}
}

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t testing.TB, data []byte, opts Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), bytes.NewReader(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestFixture keeps the checked-in fixture in step with the scenario that
// generates it, so the fixture is reviewable and reproducible.
func TestFixture(t *testing.T) {
	golden(t, "7pay.jsonl", encodeJSONL(t, scenarioEvents(t, load(t, lenient))))
}

func rule(t *testing.T, rep *Report, id string) RuleStats {
	t.Helper()
	for _, r := range rep.Rules {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no rule %q in the report", id)
	return RuleStats{}
}

// TestGolden replays the 7pay day through the example policy against the
// decisions recorded under the lenient policy. The output is golden; the
// facts that matter are asserted on top so a wrong golden cannot hide them.
func TestGolden(t *testing.T) {
	rep := run(t, readFixture(t), Options{Policy: load(t, chainDefault)})

	var table, js bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "7pay.table.golden", table.Bytes())
	golden(t, "7pay.json.golden", js.Bytes())

	in := rep.Input
	if in.Decisions != 25 || in.Bad != 0 {
		t.Errorf("input %+v: want 25 decisions, no bad line", in)
	}
	if in.Skipped["alert"] != 1 || in.Skipped["resolution"] != 1 || in.Skipped["refusal"] != 1 {
		t.Errorf("skipped %v: want the replayed screenshot's alert and resolution and the refusal", in.Skipped)
	}
	if rep.Baseline.Kind != "recorded" || rep.BaselineOutcomes != (Outcomes{Allow: 24, Deny: 1}) {
		t.Errorf("baseline %v %+v: want the recorded decisions, only the screenshot denied", rep.Baseline, rep.BaselineOutcomes)
	}
	tests := []struct {
		rule                string
		fires, fraud, legit int
		fraudAmount         int64
	}{
		{"fresh-topup", 1, 1, 0, 90_400},           // the Saitama victim, 40 minutes after the top-up
		{"tobacco-over-50000", 2, 2, 0, 190_400},   // ¥90,400 and ¥100,000
		{"carton-cap", 2, 2, 0, 190_400},           // the office smoker's 2 cartons are at the cap, not over
		{"register-accounts", 5, 5, 0, 5 * 11_600}, // crew accounts 4 to 8
		{"token", 1, 1, 0, 12_000},                 // the replayed screenshot
		{"sale-over-10000", 13, 11, 2, 295_200},    // every big sale, honest or not
		{"account-velocity", 2, 2, 0, 190_400},     // over ¥60,000 of tobacco in a day
		{"drains-topup", 2, 2, 0, 190_400},         // shadow
		{"foreign-login", 10, 10, 0, 283_200},      // only the taken-over accounts
		{"new-device", 10, 10, 0, 283_200},         //
		{"e-cigarette-units", 0, 0, 0, 0},          // 2 cartons of heat sticks = 20 units, at the limit
		{"denylist", 0, 0, 0, 0},                   // nobody on it in this run
		{"account-age", 0, 0, 0, 0},                // old accounts were taken over
		{"offline:sale", -1, 0, 0, 0},              // no register was offline: not listed
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			if tt.fires < 0 {
				for _, r := range rep.Rules {
					if r.ID == tt.rule {
						t.Fatalf("%s listed though it never fired", tt.rule)
					}
				}
				return
			}
			r := rule(t, rep, tt.rule)
			if r.Fires() != tt.fires || r.Fraud.Sales != tt.fraud || r.Legit.Sales != tt.legit {
				t.Errorf("%s: fires %d fraud %d legit %d, want %d %d %d", tt.rule, r.Fires(), r.Fraud.Sales, r.Legit.Sales, tt.fires, tt.fraud, tt.legit)
			}
			if r.Fraud.Amount != tt.fraudAmount {
				t.Errorf("%s: fraud amount %s, want %s", tt.rule, Yen(r.Fraud.Amount), Yen(tt.fraudAmount))
			}
		})
	}
	if r := rule(t, rep, "drains-topup"); r.Shadow != r.Fires() || r.Enforced != 0 {
		t.Errorf("drains-topup is a shadow rule: %+v", r)
	}
	l := rep.Labels
	if l == nil {
		t.Fatal("no label scores")
	}
	if l.Policy.FraudAllowed.Sales != 0 || l.Baseline.FraudAllowed.Sales != 10 {
		t.Errorf("fraud allowed: policy %d, baseline %d; want 0 and 10 (all but the screenshot)", l.Policy.FraudAllowed.Sales, l.Baseline.FraudAllowed.Sales)
	}
	if l.Policy.LegitDenied.Sales != 0 {
		t.Errorf("the policy denies %d honest sales", l.Policy.LegitDenied.Sales)
	}
	if *l.Policy.Recall != 1 || *l.Baseline.Recall >= 0.1 {
		t.Errorf("recall policy %v baseline %v", *l.Policy.Recall, *l.Baseline.Recall)
	}
	var allowToDeny int
	for _, tr := range rep.Transitions {
		if tr.From == policy.Allow && tr.To == policy.Deny {
			allowToDeny = tr.Sales
		}
		if tr.From == tr.To {
			t.Errorf("unchanged decisions listed as a transition: %+v", tr)
		}
	}
	// ¥90,400 and ¥100,000 (tobacco-over-50000) and crew accounts 4-8.
	if allowToDeny != 7 {
		t.Errorf("allow → deny: %d sales, want 7 (%+v)", allowToDeny, rep.Transitions)
	}
}

// TestBaselineSamePolicy: a policy compared with itself changes nothing,
// and every rule fires as often in the baseline.
func TestBaselineSamePolicy(t *testing.T) {
	rep := run(t, readFixture(t), Options{Policy: load(t, chainDefault), Baseline: load(t, chainDefault)})
	if len(rep.Transitions) != 0 || rep.Unchanged != rep.Input.Decisions {
		t.Errorf("transitions %+v, unchanged %d of %d", rep.Transitions, rep.Unchanged, rep.Input.Decisions)
	}
	if rep.Outcomes != rep.BaselineOutcomes {
		t.Errorf("outcomes %+v vs baseline %+v", rep.Outcomes, rep.BaselineOutcomes)
	}
	for _, r := range rep.Rules {
		if r.Fires() != r.BaselineFires {
			t.Errorf("%s fires %d, baseline %d", r.ID, r.Fires(), r.BaselineFires)
		}
	}
	if rep.Baseline.Kind != "policy" || rep.Baseline.Name != "chain-default" {
		t.Errorf("baseline ref %+v", rep.Baseline)
	}
}

// TestBaselineFileMatchesRecorded: replaying the policy that made the
// recorded decisions as a baseline gives the same comparison as the
// recorded decisions themselves.
func TestBaselineFileMatchesRecorded(t *testing.T) {
	data := readFixture(t)
	rec := run(t, data, Options{Policy: load(t, chainDefault)})
	base := run(t, data, Options{Policy: load(t, chainDefault), Baseline: load(t, lenient)})
	if rec.BaselineOutcomes != base.BaselineOutcomes || rec.Unchanged != base.Unchanged || len(rec.Transitions) != len(base.Transitions) {
		t.Fatalf("recorded %+v %+v vs baseline file %+v %+v", rec.BaselineOutcomes, rec.Transitions, base.BaselineOutcomes, base.Transitions)
	}
	for i := range rec.Transitions {
		if rec.Transitions[i] != base.Transitions[i] {
			t.Errorf("transition %d: %+v vs %+v", i, rec.Transitions[i], base.Transitions[i])
		}
	}
}

// TestOrderIndependent: the replay sorts by request time, so the order of
// the lines does not matter.
func TestOrderIndependent(t *testing.T) {
	data := readFixture(t)
	want := run(t, data, Options{Policy: load(t, chainDefault)})
	lines := strings.SplitAfter(string(data), "\n")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
		got := run(t, []byte(strings.Join(lines, "")), Options{Policy: load(t, chainDefault)})
		var a, b bytes.Buffer
		WriteJSON(&a, want)
		WriteJSON(&b, got)
		if a.String() != b.String() {
			t.Fatalf("shuffle %d gives another report:\n%s", i, b.String())
		}
	}
}

// TestDenylist: accounts given as the denylist are denied by the denylist
// rule of both policies.
func TestDenylist(t *testing.T) {
	rep := run(t, readFixture(t), Options{Policy: load(t, chainDefault), Baseline: load(t, lenient), Denylist: []string{"acct-crew-1", "shopper-03"}})
	r := rule(t, rep, "denylist")
	if r.Fires() != 2 || r.BaselineFires != 2 || r.Fraud.Sales != 1 || r.Legit.Sales != 1 {
		t.Errorf("denylist rule %+v: want 2 fires, one fraud, one legit, in both", r)
	}
}

// TestBadLines: each unusable line is reported with its number and what
// was wrong, and the good lines around it are still replayed.
func TestBadLines(t *testing.T) {
	good := strings.SplitAfter(string(readFixture(t)), "\n")[0]
	tests := []struct {
		name, line, reason string
	}{
		{"not json", "hello\n", "invalid character 'h'"},
		{"truncated", good[:len(good)/2] + "\n", "unexpected EOF"},
		{"unknown field", strings.Replace(good, `"seq"`, `"sequence":1,"seq"`, 1), `unknown object member name "sequence"`},
		{"name case", strings.Replace(good, `"seq"`, `"Seq"`, 1), `unknown object member name "Seq"`},
		{"duplicate member", strings.Replace(good, `"seq"`, `"seq":1,"seq"`, 1), `duplicate object member name "seq"`},
		{"seq mismatch", strings.Replace(good, `"seq":1`, `"seq":2`, 1), "id has seq 1 but seq is 2"},
		{"bad label", strings.Replace(good, `"label":"legit"`, `"label":"maybe"`, 1), `label "maybe": want fraud or legit`},
		{"no request", `{"id":"S1/R1/e/1","seq":1,"type":"decision","store":"S1","register":"R1","at":"2026-07-04T00:00:00Z","saleId":"x"}` + "\n", "decision event without request"},
		{"unknown type", `{"id":"S1/R1/e/1","seq":1,"type":"sale","store":"S1","register":"R1","at":"2026-07-04T00:00:00Z"}` + "\n", `type "sale": want decision`},
		{"trailing data", strings.TrimSuffix(good, "\n") + " {}\n", "invalid character '{' after top-level value"},
		{"too long", `{"id":"` + strings.Repeat("x", maxLine+10) + "\"}\n", "longer than the 262144 an event may be"},
		{"array", "[1,2]\n", "unmarshal JSON array into Go event.Event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := good + "\n" + tt.line + good
			rep := run(t, []byte(data), Options{Policy: load(t, chainDefault)})
			if rep.Input.Bad != 1 || len(rep.Input.BadLines) != 1 {
				t.Fatalf("bad %d %+v, want one bad line", rep.Input.Bad, rep.Input.BadLines)
			}
			bl := rep.Input.BadLines[0]
			if bl.Line != 3 || !strings.Contains(bl.Reason, tt.reason) {
				t.Errorf("bad line %+v, want line 3 with %q", bl, tt.reason)
			}
			if rep.Input.Decisions != 2 || rep.Input.Lines != 4 {
				t.Errorf("input %+v: want the 2 good lines of 4 replayed", rep.Input)
			}
		})
	}
}

func TestNothingReplayed(t *testing.T) {
	for name, data := range map[string]string{
		"empty":    "",
		"all bad":  "x\ny\n",
		"no sales": `{"id":"S1/R1/e/1","seq":1,"type":"refusal","store":"S1","register":"R1","at":"2026-07-04T00:00:00Z","detail":"x"}` + "\n",
		"blank":    "\n\n  \n",
	} {
		t.Run(name, func(t *testing.T) {
			rep, err := Run(context.Background(), strings.NewReader(data), Options{Policy: load(t, chainDefault)})
			if !errors.Is(err, ErrNothingReplayed) || rep == nil || rep.Input.Decisions != 0 {
				t.Errorf("err %v, report %+v: want ErrNothingReplayed with the report", err, rep)
			}
		})
	}
}

func TestManyBadLinesBounded(t *testing.T) {
	data := strings.Repeat("nope\n", MaxBadLines+30)
	rep, _ := Run(context.Background(), strings.NewReader(data), Options{Policy: load(t, chainDefault)})
	if rep.Input.Bad != MaxBadLines+30 || len(rep.Input.BadLines) != MaxBadLines {
		t.Errorf("bad %d listed %d", rep.Input.Bad, len(rep.Input.BadLines))
	}
	var b bytes.Buffer
	WriteTable(&b, rep)
	if !strings.Contains(b.String(), "... and 30 more bad lines") {
		t.Errorf("table does not say how many more:\n%s", b.String())
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, bytes.NewReader(synthetic(t, 5000)), Options{Policy: load(t, chainDefault)}); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

// TestProgress: Run, which reads and replays at once, reports the lines
// read; Replay reports the sales decided out of the total.
func TestProgress(t *testing.T) {
	var phases []string
	var last [2]int
	record := func(phase string, done, total int) {
		if len(phases) == 0 || phases[len(phases)-1] != phase {
			phases = append(phases, phase)
		}
		last = [2]int{done, total}
	}
	data := synthetic(t, 3000)
	run(t, data, Options{Policy: load(t, lenient), Progress: record})
	if strings.Join(phases, ",") != "read" || last != [2]int{3000, 0} {
		t.Errorf("Run progress phases %v, last %v; want read, 3000 lines", phases, last)
	}
	sales, _, err := Read(context.Background(), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	phases = nil
	if _, err := Replay(context.Background(), sales, Options{Policy: load(t, lenient), progressEvery: 1000, Progress: record}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(phases, ",") != "replay" {
		t.Errorf("Replay progress phases %v", phases)
	}
	if last != [2]int{2000, 3000} {
		t.Errorf("last replay progress %v, want 2000 of 3000", last)
	}
}

// synthetic20k is the replay of 20,000 synthetic events over 200 stores
// with a baseline and a denylist. Its golden file was written by the
// sequential replay that read everything and sorted it before the replay
// became a stream sharded by store; the stream, the sorted path (events
// shuffled, given as a seekable reader) and Replay must all still give it.
func TestSynthetic20kGolden(t *testing.T) {
	data := synthetic(t, 20_000)
	opts := Options{Policy: load(t, chainDefault), Baseline: load(t, lenient),
		Denylist: []string{"acct-00017", "acct-01234", "acct-19999"}}
	want, err := os.ReadFile("testdata/synthetic-20k.json.golden")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, rep *Report) {
		t.Helper()
		var b bytes.Buffer
		if err := WriteJSON(&b, rep); err != nil {
			t.Fatal(err)
		}
		if *update && name == "stream" {
			if err := os.WriteFile("testdata/synthetic-20k.json.golden", b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			want = b.Bytes()
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s: report differs from testdata/synthetic-20k.json.golden:\n%s", name, b.String())
		}
	}
	// Streamed: not seekable, so no second reading is possible.
	rep, err := Run(context.Background(), io.MultiReader(bytes.NewReader(data)), opts)
	if err != nil {
		t.Fatal(err)
	}
	check("stream", rep)

	lines := strings.SplitAfter(string(data), "\n")
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	shuffled := strings.Join(lines, "")
	if _, err := Run(context.Background(), io.MultiReader(strings.NewReader(shuffled)), opts); !errors.Is(err, ErrOutOfOrder) || !strings.Contains(err.Error(), "earlier than the one on line") {
		t.Fatalf("shuffled events on a reader that cannot seek: %v, want ErrOutOfOrder naming the lines", err)
	}
	rep, err = Run(context.Background(), strings.NewReader(shuffled), opts)
	if err != nil {
		t.Fatal(err)
	}
	check("shuffled, sorted", rep)
	in := rep.Input

	sales, _, err := Read(context.Background(), strings.NewReader(shuffled), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Replay(context.Background(), sales, opts)
	if err != nil {
		t.Fatal(err)
	}
	rep.Input = in
	check("Replay", rep)
}

func TestYen(t *testing.T) {
	for v, want := range map[int64]string{0: "¥0", 999: "¥999", 1000: "¥1,000", 90400: "¥90,400", 1234567: "¥1,234,567", -5000: "-¥5,000"} {
		if got := Yen(v); got != want {
			t.Errorf("Yen(%d) = %q, want %q", v, got, want)
		}
	}
}

// TestParseAgreesWithHQ: on what registers write, the fast reader decodes
// exactly what HQ's strict event.Parse decodes.
func TestParseAgreesWithHQ(t *testing.T) {
	data := append(readFixture(t), synthetic(t, 200)...)
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		ev, err := event.Parse(line)
		if err != nil {
			t.Fatalf("line %d: event.Parse: %v", i+1, err)
		}
		s, typ, err := parseLine(line)
		if err != nil || typ != ev.Type {
			t.Fatalf("line %d: parseLine: %v (type %s, want %s)", i+1, err, typ, ev.Type)
		}
		if typ != event.Decision {
			continue
		}
		want := Sale{EventID: ev.ID, Request: *ev.Request, Recorded: ev.Decision.Outcome, Label: ev.Label}
		for _, f := range ev.Decision.Rules {
			want.RecordedRules = append(want.RecordedRules, f.ID)
		}
		if !reflect.DeepEqual(s, want) {
			t.Fatalf("line %d: parseLine gives\n%+v\nevent.Parse gives\n%+v", i+1, s, want)
		}
	}
}

func TestSortByTime(t *testing.T) {
	mk := func(hhmm string, line int) Sale { return Sale{Line: line, Request: policy.Request{At: at(hhmm)}} }
	tests := []struct {
		name string
		in   []Sale
		want []int // lines in the expected order
	}{
		{"sorted", []Sale{mk("09:00", 1), mk("09:00", 2), mk("10:00", 3)}, []int{1, 2, 3}},
		{"reversed", []Sale{mk("11:00", 1), mk("10:00", 2), mk("09:00", 3)}, []int{3, 2, 1}},
		{"ties keep input order", []Sale{mk("10:00", 1), mk("09:00", 2), mk("10:00", 3), mk("09:00", 4)}, []int{2, 4, 1, 3}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, s := range sortByTime(tt.in) {
				got = append(got, s.Line)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("order %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRunMemoryBounded streams 150,000 synthetic events (about 100 MB of
// JSON, generated as they are read) through Run with a one-hour retention:
// the heap must stay far below what holding the events would take (the
// read-everything replay held about 1 KB per sale), because only chunks in
// flight and the retained history are kept.
func TestRunMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 150,000 events")
	}
	const n = 150_000
	const bound = 64 << 20
	r := &genReader{g: newSynthGen(synthShape{stores: 200, accounts: 20_000, every: 300 * time.Millisecond}), n: n}
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	rep, err := Run(context.Background(), r, Options{Policy: load(t, chainDefault), Retention: time.Hour})
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if rep.Input.Decisions != n {
		t.Fatalf("%d of %d decisions replayed", rep.Input.Decisions, n)
	}
	t.Logf("peak heap %.1f MiB for %d events", float64(peak.Load())/(1<<20), n)
	if p := peak.Load(); p > bound {
		t.Errorf("peak heap %.1f MiB, want under %d MiB: the events are being held", float64(p)/(1<<20), bound>>20)
	}
}
