package backtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

func truth(t *testing.T, lines ...string) *GroundTruth {
	t.Helper()
	g, err := ReadGroundTruth(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The labels file decides for the accounts it lists, from its `at` on;
// the events' own labels decide for the others.
func TestGroundTruthLabelsTheSales(t *testing.T) {
	data := readFixture(t)
	p := load(t, chainDefault)
	plain := run(t, data, Options{Policy: p})
	g := truth(t,
		// The eight crew accounts' events say fraud; the file says crew-1 was
		// an honest customer after all.
		`{"account":"acct-crew-1","label":"legit","case":"C-1"}`,
		// The victim's ¥90,400 sale was at 10:40; this label starts later,
		// so that sale is no longer scored.
		`{"account":"acct-victim-01","label":"fraud","case":"C-2","at":"2026-07-04T11:00:00+09:00"}`,
		// shopper-08's sale is unlabelled in the events.
		`{"account":"shopper-08","label":"fraud","at":"2026-07-04T11:00:00+09:00"}`,
		// Not in these events.
		`{"account":"acct-elsewhere","label":"fraud"}`,
	)
	rep := run(t, data, Options{Policy: p, Truth: g})

	want := TruthStats{Accounts: 4, Fraud: 3, Legit: 1, Seen: 3, Sales: 2, BeforeAt: 1}
	if rep.GroundTruth == nil || *rep.GroundTruth != want {
		t.Errorf("ground truth stats %+v, want %+v", rep.GroundTruth, want)
	}
	if plain.GroundTruth != nil {
		t.Error("ground truth stats without a labels file")
	}
	// crew-1 moves from fraud to legit, victim-01 leaves the fraud,
	// shopper-08 joins it.
	pf, pl := plain.Labels.Fraud, plain.Labels.Legit
	gf, gl := rep.Labels.Fraud, rep.Labels.Legit
	if gf.Sales != pf.Sales-1-1+1 || gl.Sales != pl.Sales+1 {
		t.Errorf("fraud %d legit %d, want %d and %d", gf.Sales, gl.Sales, pf.Sales-1, pl.Sales+1)
	}
	if gf.Amount != pf.Amount-11_600-90_400+800 {
		t.Errorf("fraud amount %s, want %s", Yen(gf.Amount), Yen(pf.Amount-11_600-90_400+800))
	}
	// crew-1 was allowed (the first three accounts pass register-accounts)
	// but reviewed for its fresh device: now a legit sale held.
	if got, was := rep.Labels.Policy.LegitReviewed.Sales, plain.Labels.Policy.LegitReviewed.Sales; got != was+1 {
		t.Errorf("legit reviewed %d, want %d", got, was+1)
	}
	if r := rule(t, rep, "foreign-login"); r.Legit.Sales != 1 || r.Fraud.Sales != 8 || *r.Precision != 0.8889 {
		t.Errorf("foreign-login %+v: want 8 fraud (victim-01 unscored, crew-1 legit), 1 legit, precision 8/9", r)
	}
}

func TestReadGroundTruthRefusesABadFile(t *testing.T) {
	_, err := ReadGroundTruth(strings.NewReader(`{"account":"a","label":"fraud"}` + "\n" + `{"account":"b","label":"suspicious"}`))
	var le *event.LabelsError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), `read labels: line 2: label "suspicious": want fraud or legit`) {
		t.Fatalf("error %v", err)
	}
}

// The sweep's points are the policy's own decisions when the levels are
// outcomes: stopping at review counts what the labelled score calls caught.
func TestSweepOverOutcomes(t *testing.T) {
	rep := run(t, readFixture(t), Options{Policy: load(t, chainDefault)})
	sw := rep.Sweep
	if sw == nil || sw.By != "outcome" || len(sw.Points) != 2 {
		t.Fatalf("sweep %+v: want two outcome points", sw)
	}
	s := rep.Labels.Policy
	review, deny := sw.Points[0], sw.Points[1]
	if review.Threshold != 1 || review.Name != "review or deny" || deny.Threshold != 2 || deny.Name != "deny" {
		t.Errorf("points %+v", sw.Points)
	}
	caught := Tally{s.FraudDenied.Sales + s.FraudReviewed.Sales, s.FraudDenied.Amount + s.FraudReviewed.Amount}
	held := Tally{s.LegitDenied.Sales + s.LegitReviewed.Sales, s.LegitDenied.Amount + s.LegitReviewed.Amount}
	if review.FraudStopped != caught || review.LegitTouched != held {
		t.Errorf("review point %+v, want fraud %+v legit %+v", review, caught, held)
	}
	if deny.FraudStopped != s.FraudDenied || deny.LegitTouched != s.LegitDenied {
		t.Errorf("deny point %+v, want %+v and %+v", deny, s.FraudDenied, s.LegitDenied)
	}
	if caught.Sales != 11 || deny.FraudStopped.Sales != 8 {
		t.Errorf("fixture: %d fraud caught, %d denied; want 11 and 8", caught.Sales, deny.FraudStopped.Sales)
	}
}

func TestChangedSales(t *testing.T) {
	rep := run(t, readFixture(t), Options{Policy: load(t, chainDefault)})
	n := 0
	for _, tr := range rep.Transitions {
		n += tr.Sales
	}
	if len(rep.Changed) != n || n != 12 {
		t.Fatalf("%d changed sales listed, %d in the transitions; want 12", len(rep.Changed), n)
	}
	for i, c := range rep.Changed {
		if i > 0 && c.Amount > rep.Changed[i-1].Amount {
			t.Errorf("changed sales not by amount, largest first, at %d", i)
		}
		if c.From == c.To || len(c.Rules) == 0 {
			t.Errorf("changed sale %+v: same outcome or no rule", c)
		}
		for _, id := range c.Rules {
			if id == "drains-topup" {
				t.Errorf("%s lists the shadow rule drains-topup", c.SaleID)
			}
		}
	}
	if first := rep.Changed[0]; first.Account != "acct-victim-02" || first.Amount != 100_000 || first.To != "deny" || first.Label != "fraud" {
		t.Errorf("largest change %+v, want the ¥100,000 tobacco denied", first)
	}
}

// With more changes than MaxChanged the report keeps the largest, earliest
// first among equals, whatever order they come in.
func TestChangedKeepsTheLargest(t *testing.T) {
	d := newDetail(nil, "")
	p := load(t, chainDefault)
	var want []int64
	for i := range 3 * MaxChanged {
		amount := int64((i*7919)%(2*MaxChanged)) * 100 // many equal amounts
		s := &Sale{Request: policy.Request{SaleID: fmt.Sprint("s", i), At: at("09:00").Add(time.Duration(i) * time.Second)}}
		d.decided(p, s, &policy.Decision{Outcome: policy.Deny}, policy.Allow, amount)
		want = append(want, amount)
	}
	rep := &Report{}
	d.finish(rep)
	slices.Sort(want)
	slices.Reverse(want)
	if len(rep.Changed) != MaxChanged {
		t.Fatalf("%d kept", len(rep.Changed))
	}
	for i, c := range rep.Changed {
		if c.Amount != want[i] {
			t.Fatalf("kept %d at %d, want %d", c.Amount, i, want[i])
		}
		if i > 0 && c.Amount == rep.Changed[i-1].Amount && c.At.Before(rep.Changed[i-1].At) {
			t.Fatalf("equal amounts not earliest first at %d", i)
		}
	}
}

// The listed sales carry their fired rules' reasons in the report's
// language; held sales are listed whether or not their decision changed.
func TestListedSalesReasons(t *testing.T) {
	data := readFixture(t)
	en := run(t, data, Options{Policy: load(t, chainDefault), Lang: "en"})
	if en.Lang != "en" || len(en.Changed) == 0 {
		t.Fatalf("lang %q, %d changed", en.Lang, len(en.Changed))
	}
	first := en.Changed[0]
	if first.Account != "acct-victim-02" || len(first.Reasons) != 7 || first.Reasons[0] != "sale ¥100,000 > limit ¥10,000" ||
		first.Reasons[6] != "(shadow) sale spends 90% or more of a top-up on tobacco" {
		t.Errorf("largest changed sale %s, reasons %q", first.Account, first.Reasons)
	}
	ja := run(t, data, Options{Policy: load(t, chainDefault)})
	if ja.Lang != "ja" || ja.Changed[0].Reasons[0] != "会計 100,000円 > 上限 10,000円" {
		t.Errorf("default language %q: %q", ja.Lang, ja.Changed[0].Reasons)
	}
	// Against itself the policy changes nothing, and still holds sales.
	self := run(t, data, Options{Policy: load(t, chainDefault), Baseline: load(t, chainDefault), Lang: "en"})
	if len(self.Changed) != 0 || len(self.Held) != self.Outcomes.Review || len(self.Held) == 0 {
		t.Fatalf("against itself: %d changed, %d held of %d reviewed", len(self.Changed), len(self.Held), self.Outcomes.Review)
	}
	for i, h := range self.Held {
		if h.To != policy.Review || h.From != policy.Review || len(h.Reasons) == 0 || i > 0 && h.Amount > self.Held[i-1].Amount {
			t.Errorf("held[%d] = %+v: want review, with reasons, largest first", i, h)
		}
	}
	var table strings.Builder
	if err := WriteTable(&table, self); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), fmt.Sprintf("largest sales held for review (%d of %d)\n", len(self.Held), self.Outcomes.Review)) ||
		!strings.Contains(table.String(), "      · "+self.Held[0].Reasons[0]+"\n") {
		t.Errorf("the table does not list the held sales with their reasons:\n%s", table.String())
	}
}
