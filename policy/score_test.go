package policy

import (
	"testing"
	"time"
)

// scorePolicy scores a carton sale: 30 for more than one carton, 30 for a
// device bound in the last day, 20 for a foreign login (shadow), and
// reviews at 40, denies at 80.
func scorePolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := Load([]byte(testBase + `  - {id: cartons, kind: cart_limit, action: score, score: 30, categories: [tobacco-carton], maxQuantity: 1}
  - {id: new-device, kind: new_device, action: score, score: 30, within: 24h}
  - {id: big, kind: sale_amount, action: review, score: 25, maxAmount: 50000}
  - {id: abroad, kind: foreign_login, action: score, score: 20, mode: shadow}
thresholds: {review: 40, deny: 80}
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScores(t *testing.T) {
	p := scorePolicy(t)
	fresh := pay("a")
	fresh.DeviceSince = t0.Add(-time.Hour)
	abroad := pay("a")
	abroad.ForeignLogin = true
	for _, tt := range []struct {
		name          string
		lines         []Line
		pay           Payment
		want          Outcome
		score, shadow int
		rules         map[string]int // fired id -> its score
	}{
		{"one carton: nothing", []Line{cartons(1)}, pay("a"), Allow, 0, 0, map[string]int{}},
		{"two cartons: 30 < 40, allowed though the rule fired", []Line{cartons(2)}, pay("a"), Allow, 30, 0, map[string]int{"cartons": 30}},
		{"two cartons on a new device: 60, review band", []Line{cartons(2)}, fresh, Review, 60, 0, map[string]int{"cartons": 30, "new-device": 30}},
		{"ten cartons on a new device: 85, deny band", []Line{cartons(10)}, fresh, Deny, 85, 0, map[string]int{"cartons": 30, "new-device": 30, "big": 25}},
		{"ten cartons: 55 and the rule's own review", []Line{cartons(10)}, pay("a"), Review, 55, 0, map[string]int{"cartons": 30, "big": 25}},
		{"shadow score is reported, not acted on", []Line{cartons(2)}, abroad, Allow, 30, 20, map[string]int{"cartons": 30, "abroad": 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(p, Request{Store: "S1", Register: "R1", At: t0, Lines: tt.lines, Payment: tt.pay}, nil)
			if d.Outcome != tt.want || d.Score != tt.score || d.ShadowScore != tt.shadow || len(d.Rules) != len(tt.rules) {
				t.Fatalf("got %s score %d shadow %d %+v, want %s %d %d %v", d.Outcome, d.Score, d.ShadowScore, d.Rules, tt.want, tt.score, tt.shadow, tt.rules)
			}
			for _, f := range d.Rules {
				if s, ok := tt.rules[f.ID]; !ok || f.Score != s {
					t.Errorf("fired %s with score %d, want %v", f.ID, f.Score, tt.rules)
				}
			}
		})
	}
	// Thresholds only need reaching: a band at exactly the score applies.
	if o := (Thresholds{Review: 40, Deny: 80}).band(80); o != Deny {
		t.Errorf("band(80) = %s", o)
	}
	if o := (Thresholds{Deny: 80}).band(79); o != Allow {
		t.Errorf("deny-only band(79) = %s", o)
	}
}

// TestNoScoresNoScoreFields: a policy without scores decides as before and
// its decisions say nothing of scores.
func TestNoScoresNoScoreFields(t *testing.T) {
	d := Evaluate(loadExampleUnscored(t), readRequest(t, "topup-90400"), shinjuku(t))
	if d.Score != 0 || d.ShadowScore != 0 {
		t.Fatalf("unscored policy gave score %d / %d", d.Score, d.ShadowScore)
	}
	for _, f := range d.Rules {
		if f.Score != 0 {
			t.Errorf("%s has score %d", f.ID, f.Score)
		}
	}
}

// loadExampleUnscored is the example policy as it was before scores
// (testdata/unscored.yaml): only actions decide.
func loadExampleUnscored(t testing.TB) *Policy {
	t.Helper()
	return loadTestdata(t, "unscored.yaml")
}
