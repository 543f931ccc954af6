package gen

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/golden"
	"github.com/posguard/posguard/policy"
)

var start = time.Date(2026, 7, 1, 0, 0, 0, 0, Zone)

func generate(t *testing.T, cfg Config) (events, labels []byte, st Stats) {
	t.Helper()
	var e, l bytes.Buffer
	st, err := Generate(context.Background(), cfg, &e, &l)
	if err != nil {
		t.Fatal(err)
	}
	return e.Bytes(), l.Bytes(), st
}

func small(seed uint64) Config {
	return Config{Seed: seed, Start: start, Days: 10, Stores: 6, RegistersPerStore: 2, SalesPerStoreDay: 80}
}

func TestSameSeedSameBytes(t *testing.T) {
	e1, l1, _ := generate(t, small(7))
	e2, l2, _ := generate(t, small(7))
	if !bytes.Equal(e1, e2) || !bytes.Equal(l1, l2) {
		t.Fatal("two runs with the same seed differ")
	}
	e3, l3, _ := generate(t, small(8))
	if bytes.Equal(e1, e3) || bytes.Equal(l1, l3) {
		t.Fatal("another seed gave the same data")
	}
}

type month struct {
	events []event.Event
	labels map[string]event.AccountLabel
	stats  Stats
}

// parse reads the output back as HQ and the backtest would: every line an
// event event.Parse accepts, the labels as event.ReadLabels reads them.
func parse(t *testing.T, cfg Config) month {
	t.Helper()
	e, l, st := generate(t, cfg)
	m := month{labels: map[string]event.AccountLabel{}, stats: st}
	sc := bufio.NewScanner(bytes.NewReader(e))
	sc.Buffer(nil, event.MaxSize)
	for sc.Scan() {
		ev, err := event.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("event %d: %v", len(m.events)+1, err)
		}
		m.events = append(m.events, ev)
	}
	labels, err := event.ReadLabels(bytes.NewReader(l))
	if err != nil {
		t.Fatal(err)
	}
	for _, lb := range labels {
		m.labels[lb.Account] = lb
	}
	return m
}

// label is the ground truth of a sale, as a backtest reads it.
func (m *month) label(ev *event.Event) string {
	lb := m.labels[ev.Request.Payment.Account]
	if !lb.At.IsZero() && ev.Request.At.Before(lb.At) {
		return ""
	}
	return lb.Label
}

func TestOutputIsWhatHQExports(t *testing.T) {
	m := parse(t, small(1))
	if len(m.events) != m.stats.Sales || m.stats.Sales < 4000 {
		t.Fatalf("%d events, stats say %d", len(m.events), m.stats.Sales)
	}
	seqs := map[string]uint64{}
	paid := map[string]bool{}
	for i, ev := range m.events {
		if i > 0 && ev.At.Before(m.events[i-1].At) {
			t.Fatalf("event %d is older than the one before: not in time order", i+1)
		}
		reg := ev.Store + "/" + ev.Register
		if ev.Seq != seqs[reg]+1 {
			t.Fatalf("%s: seq %d after %d", ev.ID, ev.Seq, seqs[reg])
		}
		seqs[reg] = ev.Seq
		if ev.Type != event.Decision || ev.Label != "" || ev.Decision.Outcome != policy.Allow || ev.Decision.Policy != Recorded {
			t.Fatalf("%s: want an unlabelled decision allowed by %v", ev.ID, Recorded)
		}
		p := ev.Request.Payment
		if p.Kind != policy.TokenPG1 || p.Issuer != Issuer || p.Account == "" || len(p.TokenID) != 32 || p.DeviceID == "" || p.AccountSince.IsZero() {
			t.Fatalf("%s: payment %+v", ev.ID, p)
		}
		if _, ok := m.labels[p.Account]; !ok {
			t.Fatalf("%s: account %s has no label", ev.ID, p.Account)
		}
		paid[p.Account] = true
	}
	if len(paid) != len(m.labels) || len(paid) != m.stats.Accounts {
		t.Errorf("%d accounts paid, %d labelled, stats say %d", len(paid), len(m.labels), m.stats.Accounts)
	}
}

// The proportions are a chain's: almost every sale is an honest one under
// ¥2,000; fraud is rare but there; the bulk buyers are there.
func TestProportions(t *testing.T) {
	m := parse(t, Config{Seed: 3, Start: start, Days: 30, Stores: 10, RegistersPerStore: 2, SalesPerStoreDay: 100})
	var fraud, legit, legitOver10k, legitForeign, bulkOffice, unlabelled int
	var amounts []int64
	for i := range m.events {
		ev := &m.events[i]
		req := ev.Request
		a := amountOf(req.Lines)
		switch m.label(ev) {
		case event.LabelFraud:
			fraud++
		case event.LabelLegit:
			legit++
			amounts = append(amounts, a)
			if a > 10_000 {
				legitOver10k++
			}
			if req.Payment.ForeignLogin {
				legitForeign++
			}
			p := req.Payment
			if cartonsOf(req.Lines) >= 10 && req.At.Sub(p.AccountSince) > 3*365*24*time.Hour &&
				req.At.Sub(p.DeviceSince) > 365*24*time.Hour && req.At.Sub(p.TopUpAt) > 24*time.Hour && !p.ForeignLogin {
				bulkOffice++
			}
		default:
			unlabelled++ // a victim's own sales before the takeover
		}
	}
	n := len(m.events)
	slices.Sort(amounts)
	share := func(k int) float64 { return float64(k) / float64(n) }
	t.Logf("%d sales: %d fraud, %d legit (%d over ¥10,000, %d office orders), %d before a takeover; median legit ¥%d; %+v",
		n, fraud, legit, legitOver10k, bulkOffice, unlabelled, amounts[len(amounts)/2], m.stats)
	if s := share(fraud); s < 0.001 || s > 0.02 {
		t.Errorf("fraud is %.2f%% of sales, want 0.1%% to 2%%", 100*s)
	}
	if fraud != m.stats.FraudSales {
		t.Errorf("%d sales labelled fraud, stats say %d", fraud, m.stats.FraudSales)
	}
	if med := amounts[len(amounts)/2]; med < 300 || med > 2000 {
		t.Errorf("median honest sale ¥%d, want ¥300 to ¥2,000", med)
	}
	// "Few customers spend over ¥10,000 in one visit."
	if s := float64(legitOver10k) / float64(legit); s > 0.02 || legitOver10k < 20 {
		t.Errorf("%d honest sales (%.2f%%) over ¥10,000: want some, under 2%%", legitOver10k, 100*s)
	}
	if bulkOffice < 5 {
		t.Errorf("%d office orders of 10 cartons from old accounts, want several", bulkOffice)
	}
	if s := float64(legitForeign) / float64(legit); s > 0.01 {
		t.Errorf("%.2f%% of honest sales with a foreign login, want under 1%%", 100*s)
	}
	if unlabelled == 0 || m.stats.Stolen == 0 {
		t.Error("no customer of ours was taken over: the labels' at is never exercised")
	}
}

func amountOf(lines []policy.Line) int64 {
	var a int64
	for _, l := range lines {
		a += int64(l.Quantity) * l.UnitPrice
	}
	return a
}

func cartonsOf(lines []policy.Line) int {
	n := 0
	for _, l := range lines {
		if l.Category == "tobacco-carton" || (l.Category == "e-cigarette" && l.UnitPrice >= 5000) {
			n += l.Quantity
		}
	}
	return n
}

// The 2019 crews are in the data: fresh top-ups, new devices, foreign
// logins, cartons, and 7 or more accounts in a row at one store.
func TestCrewPatterns(t *testing.T) {
	m := parse(t, Config{Seed: 5, Start: start, Days: 8, Stores: 8, RegistersPerStore: 3, SalesPerStoreDay: 60})
	var fraud, freshTopUp, newDevice, foreign, withCartons, drained int
	var fraudSales []*event.Event
	cases := map[string]bool{}
	for i := range m.events {
		ev := &m.events[i]
		if m.label(ev) != event.LabelFraud {
			continue
		}
		fraudSales = append(fraudSales, ev)
		fraud++
		p, at := ev.Request.Payment, ev.Request.At
		lb := m.labels[p.Account]
		if lb.Case == "" || lb.At.IsZero() || !lb.At.Before(at) {
			t.Errorf("%s: fraud label %+v without a case or a takeover before the sale", ev.ID, lb)
		}
		cases[lb.Case] = true
		if d := at.Sub(p.TopUpAt); d >= 0 && d <= time.Hour {
			freshTopUp++
		}
		if at.Sub(p.DeviceSince) < 24*time.Hour {
			newDevice++
		}
		if p.ForeignLogin {
			foreign++
		}
		if cartonsOf(ev.Request.Lines) > 0 {
			withCartons++
		}
		if a := amountOf(ev.Request.Lines); a*10 >= p.TopUpAmount*8 {
			drained++
		}
	}
	pct := func(k int) int { return 100 * k / fraud }
	t.Logf("%d fraud sales, %d cases: %d%% fresh top-up, %d%% new device, %d%% foreign, %d%% cartons, %d%% drain the top-up",
		fraud, len(cases), pct(freshTopUp), pct(newDevice), pct(foreign), pct(withCartons), pct(drained))
	if fraud < 30 {
		t.Fatalf("%d fraud sales", fraud)
	}
	if pct(freshTopUp) < 70 || pct(freshTopUp) == 100 {
		t.Errorf("%d%% of fraud sales within an hour of a top-up: want most, not all", pct(freshTopUp))
	}
	if pct(newDevice) < 75 || pct(newDevice) == 100 {
		t.Errorf("%d%% of fraud sales from a device bound within a day: want most, not all", pct(newDevice))
	}
	if pct(foreign) < 50 || pct(foreign) == 100 {
		t.Errorf("%d%% of fraud sales after a foreign login: want most, not all", pct(foreign))
	}
	if withCartons != fraud {
		t.Errorf("%d of %d fraud sales buy cartons, want all", withCartons, fraud)
	}
	// Shinjuku: a run of 7 or more taken-over accounts at one store
	// within 30 minutes, on the attack wave.
	best := 0
	for i, ev := range fraudSales {
		accts := map[string]bool{}
		for _, o := range fraudSales[i:] {
			if o.Request.At.Sub(ev.Request.At) > 30*time.Minute {
				break
			}
			if o.Store == ev.Store {
				accts[o.Request.Payment.Account] = true
			}
		}
		best = max(best, len(accts))
	}
	if best < 7 {
		t.Errorf("at most %d fraud accounts at one store within 30 minutes, want a crew of 7 or more", best)
	}
	if len(cases) < m.stats.CrewVisits+m.stats.Lone || m.stats.CrewVisits == 0 || m.stats.Lone == 0 {
		t.Errorf("%d cases for %d crew runs and %d lone victims", len(cases), m.stats.CrewVisits, m.stats.Lone)
	}
}

func TestConfigChecked(t *testing.T) {
	_, err := Generate(context.Background(), Config{Start: start, Days: 0, Stores: 50_000, RegistersPerStore: 1}, &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "days 0: want 1 to 366") || !strings.Contains(err.Error(), "stores 50000: want 1 to 20000") {
		t.Errorf("error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, small(1), &bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled: %v", err)
	}
}

// sampleConfig is the committed sample's: `posguard policy gen-events
// --seed 1 --days 2 --stores 2 --sales-per-day 30`.
var sampleConfig = Config{Seed: 1, Start: start, Days: 2, Stores: 2, RegistersPerStore: 2, SalesPerStoreDay: 30}

// TestSample keeps policy/backtest/testdata/gen-sample*.jsonl what the
// generator makes; -update rewrites them.
func TestSample(t *testing.T) {
	e, l, st := generate(t, sampleConfig)
	if st.CrewVisits == 0 || st.Lone == 0 || st.BulkSales == 0 {
		t.Errorf("the sample lacks a population: %+v", st)
	}
	golden.Check(t, filepath.Join("..", "testdata", "gen-sample.jsonl"), e)
	golden.Check(t, filepath.Join("..", "testdata", "gen-sample.labels.jsonl"), l)
}
