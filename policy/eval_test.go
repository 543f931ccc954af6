package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/golden"
)

func readRequest(t testing.TB, name string) Request {
	t.Helper()
	var r Request
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join("testdata/requests", name+".json"))), &r); err != nil {
		t.Fatalf("request %s: %v", name, err)
	}
	return r
}

func shinjuku(t testing.TB) *MemoryHistory {
	t.Helper()
	h, err := LoadHistoryFile("testdata/history/shinjuku.json")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// decisionJSON is how `posguard policy eval` prints a decision.
func decisionJSON(t testing.TB, d Decision) []byte {
	t.Helper()
	b, err := DecisionJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firedIDs(d Decision) []string {
	var ids []string
	for _, f := range d.Rules {
		ids = append(ids, f.ID)
	}
	return ids
}

func findFired(d Decision, id string) (Fired, bool) {
	for _, f := range d.Rules {
		if f.ID == id {
			return f, true
		}
	}
	return Fired{}, false
}

// TestIncidentGolden replays the facts of the 7pay attack against the
// example policy; the decisions are golden files, and the facts the issue
// names are asserted on top so a wrong golden cannot hide them.
func TestIncidentGolden(t *testing.T) {
	p := loadExample(t)
	h := shinjuku(t)
	files, _ := filepath.Glob("testdata/requests/*.json")
	if len(files) < 6 {
		t.Fatalf("only %d requests", len(files))
	}
	unscored := loadExampleUnscored(t)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			d := Evaluate(p, readRequest(t, name), h)
			golden.Check(t, filepath.Join("testdata", "decisions", name+".json"), decisionJSON(t, d))
		})
		// The example as it was before scores: decides as it always did.
		if _, err := os.Stat(filepath.Join("testdata", "decisions-unscored", name+".json")); err == nil || golden.Update() {
			t.Run("unscored/"+name, func(t *testing.T) {
				d := Evaluate(unscored, readRequest(t, name), h)
				golden.Check(t, filepath.Join("testdata", "decisions-unscored", name+".json"), decisionJSON(t, d))
			})
		}
	}

	// Issue 16: the scores tell a crew from a good customer.
	for _, tt := range []struct {
		name, request string
		want          []Outcome
		score         int
	}{
		{"regular customer, two cartons, old account and device", "regular-2-cartons", []Outcome{Allow}, 10},
		{"crew's first account: fresh top-up, new device, foreign login", "crew-first-account", []Outcome{Review, Deny}, 100},
		{"Saitama victim: ¥90,000 top-up, ¥90,400 spent within the hour", "topup-90400", []Outcome{Deny}, 165},
		{"office order of 10 cartons from a 3-year-old account", "office-10-cartons", []Outcome{Allow, Review}, 55},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(p, readRequest(t, tt.request), h)
			if !slices.Contains(tt.want, d.Outcome) || d.Score != tt.score {
				t.Errorf("got %s score %d, want one of %v with score %d (%v)", d.Outcome, d.Score, tt.want, tt.score, firedIDs(d))
			}
		})
	}
	t.Run("fresh top-up then tobacco", func(t *testing.T) {
		d := Evaluate(p, readRequest(t, "topup-90400"), h)
		if d.Outcome != Review && d.Outcome != Deny {
			t.Errorf("outcome %s, want review or deny", d.Outcome)
		}
		f, ok := findFired(d, "fresh-topup")
		want := "top-up ¥90,000 40m0s before a ¥90,400 sale of tobacco (within 1h0m0s, min ¥10,000)"
		if !ok || f.Reason != want {
			t.Errorf("fresh-topup = %+v, want reason %q", f, want)
		}
		if f, ok := findFired(d, "drains-topup"); !ok || f.Mode != ModeShadow {
			t.Errorf("shadow expr rule not listed: %+v", d.Rules)
		}
	})
	t.Run("100000 of tobacco at once", func(t *testing.T) {
		d := Evaluate(p, readRequest(t, "tobacco-100000"), h)
		if d.Outcome != Deny {
			t.Errorf("outcome %s, want deny (%v)", d.Outcome, d.Rules)
		}
		if f, _ := findFired(d, "tobacco-over-50000"); f.Reason != "tobacco ¥100,000 > limit ¥50,000" {
			t.Errorf("reason %q", f.Reason)
		}
	})
	t.Run("8th account at one register, one more at the other till", func(t *testing.T) {
		d := Evaluate(p, readRequest(t, "register-8th"), h)
		if d.Outcome != Deny {
			t.Errorf("outcome %s, want deny", d.Outcome)
		}
		// The example counts the store: acct-9's cartons at R2 are in.
		if f, _ := findFired(d, "register-accounts"); f.Reason != "9 accounts at store S001 in 30m0s > limit 3" {
			t.Errorf("reason %q (%v)", f.Reason, d.Rules)
		}
		q := loadExample(t)
		for i := range q.Rules {
			if q.Rules[i].ID == "register-accounts" {
				q.Rules[i].Scope = ScopeRegister
			}
		}
		d = Evaluate(q, readRequest(t, "register-8th"), h)
		if f, _ := findFired(d, "register-accounts"); f.Reason != "8 accounts at register R1 in 30m0s > limit 3" {
			t.Errorf("register scope: reason %q (%v)", f.Reason, d.Rules)
		}
	})
	t.Run("onigiri and coffee after a top-up", func(t *testing.T) {
		d := Evaluate(p, readRequest(t, "onigiri-700"), h)
		if d.Outcome != Allow || len(d.Rules) != 0 {
			t.Errorf("got %s %v, want allow with no rules", d.Outcome, d.Rules)
		}
	})
	t.Run("same rule in shadow mode", func(t *testing.T) {
		q := loadExample(t)
		for _, r := range q.Rules {
			if r.ID == "fresh-topup" {
				r.Mode = ModeShadow
				q.Rules = []Rule{r}
				break
			}
		}
		d := Evaluate(q, readRequest(t, "topup-90400"), h)
		f, ok := findFired(d, "fresh-topup")
		if d.Outcome != Allow || !ok || f.Mode != ModeShadow || len(d.Rules) != 1 {
			t.Errorf("got %s %+v, want allow with fresh-topup listed in shadow", d.Outcome, d.Rules)
		}
	})
}

const testBase = `apiVersion: posguard/v1
kind: Policy
metadata: {name: t, version: 7, issuedAt: 2026-01-01T00:00:00Z, expiresAt: 2027-01-01T00:00:00Z}
catalog:
  categories:
    - {id: tobacco, label: tobacco packs}
    - {id: tobacco-carton, label: tobacco cartons}
    - {id: food, label: food}
  items:
    - {jan: "4901234000100", name: carton, category: tobacco-carton, unitPrice: 6000, units: 10}
    - {jan: "4901234000018", name: pack, category: tobacco, unitPrice: 600}
    - {jan: "4901234200012", name: onigiri, category: food, unitPrice: 200}
offline:
  maxSaleAmount: 10000
  categories: [{category: tobacco-carton, maxQuantity: 1}]
rules:
`

func testPolicy(t testing.TB, rule string) *Policy {
	t.Helper()
	p, err := Load([]byte(testBase + "  - " + rule + "\n"))
	if err != nil {
		t.Fatalf("test policy: %v", err)
	}
	return p
}

var t0 = time.Date(2026, 7, 4, 15, 0, 0, 0, time.FixedZone("JST", 9*3600))

func cartons(n int) Line {
	return Line{JAN: "4901234000100", Category: "tobacco-carton", Quantity: n, UnitPrice: 6000}
}
func packs(n int) Line {
	return Line{JAN: "4901234000018", Category: "tobacco", Quantity: n, UnitPrice: 600}
}
func onigiri(n int) Line {
	return Line{JAN: "4901234200012", Category: "food", Quantity: n, UnitPrice: 200}
}
func pay(acct string) Payment { return Payment{Kind: TokenPG1, Account: acct} }

func repeatLine(l Line, n int) []Line {
	lines := make([]Line, n)
	for i := range lines {
		lines[i] = l
	}
	return lines
}

func pastSale(acct string, ago time.Duration, lines ...Line) PastSale {
	return PastSale{At: t0.Add(-ago), Account: acct, Store: "S1", Register: "R1", Lines: lines}
}

// refusedSale is a denied attempt at S1/R1.
func refusedSale(acct string, ago time.Duration, lines ...Line) PastSale {
	s := pastSale(acct, ago, lines...)
	s.Denied = true
	return s
}

// TestNothingFiredEncodesEmptyRules: a decision where no rule fired lists
// "rules": [] wherever it is encoded, not null, whichever way it was decided.
func TestNothingFiredEncodesEmptyRules(t *testing.T) {
	quiet := Request{Store: "S1", Register: "R1", At: t0, Lines: []Line{onigiri(1)}, Payment: pay("a")}
	for _, tt := range []struct {
		name string
		d    Decision
	}{
		{"policy", Evaluate(loadExample(t), quiet, shinjuku(t))},
		{"policy, nil history", Evaluate(testPolicy(t, `{id: r, kind: denylist, action: deny}`), quiet, nil)},
		{"failMode", EvaluateFailMode(DefaultFailMode(), quiet)},
		{"no policy", Evaluate(nil, quiet, nil)},
		{"policy not built by Load", Evaluate(&Policy{}, quiet, nil)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.d.Outcome != Allow || tt.d.Rules == nil || len(tt.d.Rules) != 0 {
				t.Fatalf("got %s %#v, want allow with an empty, non-nil Rules", tt.d.Outcome, tt.d.Rules)
			}
			b, err := json.Marshal(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), `"rules":[]`) {
				t.Errorf("encoded as %s, want \"rules\":[]", b)
			}
		})
	}
}

// TestEvaluateDoesNotAllocate: with the pool warm, a sale where nothing
// fires costs no allocation, with the example policy as shipped (its CEL
// rule included) and without its CEL rule. The benchmarks measure the
// same; this keeps it from regressing unseen.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop entries")
	}
	req := benchRequest()
	h := benchHistory(req.At)
	p := loadExample(t)
	noExpr := loadExample(t)
	noExpr.Rules = slices.DeleteFunc(noExpr.Rules, func(r Rule) bool { return r.Kind == KindExpr })
	// A top-up 10 minutes ago and a ¥600 sale: fresh-topup asks the history
	// what the account spent since, and finds it under its minimum. The
	// top-up is ¥200 because the example's expr rule reads it, and CEL
	// boxes integers of 256 and up (one allocation that is not the rule's).
	topUp := req
	topUp.Payment.TopUpAt, topUp.Payment.TopUpAmount = req.At.Add(-10*time.Minute), 200
	for name, p := range map[string]*Policy{"example": p, "without expr": noExpr} {
		for what, req := range map[string]Request{"": req, ", fresh small top-up": topUp} {
			if d := Evaluate(p, req, h); d.Outcome != Allow || len(d.Rules) != 0 {
				t.Fatalf("%s%s: sale should pass quietly: %+v", name, what, d)
			}
			if n := testing.AllocsPerRun(200, func() { Evaluate(p, req, h) }); n != 0 {
				t.Errorf("%s%s: a quiet sale allocates %v times", name, what, n)
			}
		}
	}
}

func TestOffline(t *testing.T) {
	p := testPolicy(t, `{id: r, kind: denylist, action: deny}`)
	req := Request{Store: "S1", Register: "R1", At: t0, Lines: []Line{cartons(2)}, Payment: pay("a")}
	if d := Evaluate(p, req, nil); d.Outcome != Allow || d.Offline || len(d.Rules) != 0 {
		t.Errorf("online: %+v", d)
	}
	req.Offline = true
	d := Evaluate(p, req, nil)
	want := []Fired{
		{ID: "offline:sale", Action: "review", Mode: "enforce", Reason: "offline: sale ¥12,000 > limit ¥10,000"},
		{ID: "offline:tobacco-carton", Action: "review", Mode: "enforce", Reason: "offline: tobacco cartons 2 > limit 1"},
	}
	got := make([]Fired, len(d.Rules))
	for i, f := range d.Rules {
		got[i] = Fired{ID: f.ID, Action: f.Action, Mode: f.Mode, Reason: f.Reason}
	}
	if !d.Offline || d.Outcome != Review || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("offline: %+v\nwant rules %+v", d, want)
	}
}

func TestTokens(t *testing.T) {
	p := loadExample(t)
	base := Request{Store: "S1", Register: "R1", At: t0, Lines: []Line{onigiri(1)}}
	tests := []struct {
		name    string
		pay     Payment
		invalid string // failMode.invalidToken override
		unknown string
		want    Outcome
		reason  string
	}{
		{name: "valid", pay: pay("a"), want: Allow},
		{name: "replayed", pay: Payment{Kind: TokenPG1, Account: "a", Invalid: "replayed"}, want: Deny, reason: "token rejected: replayed"},
		{name: "bad signature reviewed by policy", pay: Payment{Kind: TokenPG1, Invalid: "bad_signature"}, invalid: "review", want: Review, reason: "token rejected: bad_signature"},
		{name: "invalid never allowed", pay: Payment{Kind: TokenPG1, Invalid: "expired"}, invalid: "allow", want: Deny, reason: "token rejected: expired"},
		{name: "unknown kind", pay: Payment{Kind: "unknown"}, want: Review, reason: "token matched no known wallet (kind unknown)"},
		{name: "unknown allowed by policy", pay: Payment{Kind: "unknown"}, unknown: "allow", want: Allow},
		{name: "unknown denied by policy", pay: Payment{Kind: "unknown"}, unknown: "deny", want: Deny, reason: "token matched no known wallet (kind unknown)"},
		{name: "no kind", pay: Payment{}, want: Review, reason: "token matched no known wallet (kind none)"},
		{name: "emv", pay: Payment{Kind: TokenEMV, Account: "e"}, want: Allow},
		{name: "opaque", pay: Payment{Kind: TokenOpaque, Account: "o"}, want: Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := *p
			if tt.invalid != "" {
				q.FailMode.InvalidToken = tt.invalid
			}
			if tt.unknown != "" {
				q.FailMode.UnknownToken = tt.unknown
			}
			req := base
			req.Payment = tt.pay
			d := Evaluate(&q, req, nil)
			f, fired := findFired(d, TokenRuleID)
			if d.Outcome != tt.want || fired != (tt.reason != "") || f.Reason != tt.reason {
				t.Errorf("got %s %+v, want %s %q", d.Outcome, d.Rules, tt.want, tt.reason)
			}
		})
	}
}

func TestFailMode(t *testing.T) {
	fm := DefaultFailMode()
	base := Request{At: t0, Payment: pay("a")}
	tests := []struct {
		name  string
		lines []Line
		pay   *Payment
		want  Outcome
		rules []string
	}{
		{name: "tobacco reviewed", lines: []Line{onigiri(1), packs(1)}, want: Review, rules: []string{"failmode:category"}},
		{name: "cartons reviewed once", lines: []Line{cartons(1), packs(1)}, want: Review, rules: []string{"failmode:category"}},
		{name: "onigiri allowed", lines: []Line{onigiri(3)}, want: Allow},
		{name: "unknown items allowed", lines: []Line{{JAN: "1", Quantity: 1, UnitPrice: 99999}}, want: Allow},
		{name: "empty cart", want: Allow},
		{name: "invalid token denied", lines: []Line{onigiri(1)}, pay: &Payment{Kind: TokenPG1, Invalid: "replayed"}, want: Deny, rules: []string{"token"}},
		{name: "unknown token reviewed", lines: []Line{onigiri(1)}, pay: &Payment{Kind: "unknown"}, want: Review, rules: []string{"token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := base
			req.Lines = tt.lines
			if tt.pay != nil {
				req.Payment = *tt.pay
			}
			d := EvaluateFailMode(fm, req)
			if !d.FailMode || d.Outcome != tt.want || fmt.Sprint(firedIDs(d)) != fmt.Sprint(tt.rules) {
				t.Errorf("got %+v, want %s %v", d, tt.want, tt.rules)
			}
		})
	}
	amt := int64(10000)
	d := EvaluateFailMode(FailMode{Action: "deny", MaxSaleAmount: &amt}, Request{At: t0, Payment: pay("a"), Lines: []Line{onigiri(51)}})
	if d.Outcome != Deny || d.Rules[0].Reason != "no valid policy: sale ¥10,200 > limit ¥10,000" {
		t.Errorf("maxSaleAmount: %+v", d)
	}
	if d := Evaluate(nil, Request{At: t0, Payment: pay("a"), Lines: []Line{packs(1)}}, nil); !d.FailMode || d.Outcome != Review {
		t.Errorf("nil policy must use DefaultFailMode: %+v", d)
	}
}

// TestConcurrent runs Evaluate from many goroutines on one policy and one
// history (meaningful under -race) and checks they all agree.
func TestConcurrent(t *testing.T) {
	p := loadExample(t)
	h := shinjuku(t)
	req := readRequest(t, "topup-90400")
	want := decisionJSON(t, Evaluate(p, req, h))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if got := decisionJSON(t, Evaluate(p, req, h)); string(got) != string(want) {
					errs <- string(got)
					return
				}
				h.Add(PastSale{At: t0.Add(-48 * time.Hour), Account: "other", Store: "S9", Register: "R9"})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent decision differs: %s", e)
	}
}

func TestLoadHistory(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"sales":[],"denylist":["a"]}`, ""},
		{`{"sales":[{"account":"a"}]}`, "sales[0].at: is required"},
		{`{"sale":[]}`, `unknown field "sale"`},
		{`[`, "unexpected EOF"},
	} {
		_, err := LoadHistory([]byte(tt.in))
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("LoadHistory(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
	if _, err := LoadHistoryFile("testdata/nope.json"); err == nil || !strings.Contains(err.Error(), "testdata/nope.json") {
		t.Errorf("missing file error lacks the path: %v", err)
	}
	_ = os.Remove
}

// TestUnloadedPolicy: a Policy built by hand, skipping Load, must not make
// Evaluate panic.
func TestUnloadedPolicy(t *testing.T) {
	p := &Policy{
		Rules:   []Rule{{ID: "a", Kind: KindSaleAmount, Action: "deny"}, {ID: "b", Kind: KindRegisterAccounts, Action: "deny"}, {ID: "c", Kind: KindExpr, Action: "deny", Expr: "true"}},
		Offline: Offline{Action: "review", Categories: []OfflineLimit{{Category: "food", MaxQuantity: new(int)}}},
	}
	d := Evaluate(p, Request{At: t0, Offline: true, Lines: []Line{onigiri(1)}, Payment: pay("a")}, nil)
	if d.Outcome != Review || len(d.Rules) != 1 || d.Rules[0].ID != "offline:food" {
		t.Errorf("got %+v", d)
	}
}

// TestRuleAddedByHand: a rule Load never saw is still judged by its kind.
func TestRuleAddedByHand(t *testing.T) {
	p := testPolicy(t, `{id: r, kind: foreign_login, action: review}`)
	p.Rules = append(p.Rules, Rule{ID: "d", Kind: KindDenylist, Action: "deny", Mode: ModeEnforce}, Rule{ID: "x", Kind: "no_such_kind", Action: "deny"})
	d := Evaluate(p, Request{At: t0, Lines: []Line{onigiri(1)}, Payment: pay("bad")}, NewMemoryHistory(nil, []string{"bad"}))
	if d.Outcome != Deny || fmt.Sprint(firedIDs(d)) != "[d]" {
		t.Errorf("got %+v, want rule d to deny", d)
	}
}
