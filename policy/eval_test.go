package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			d := Evaluate(p, readRequest(t, name), h)
			golden.Check(t, filepath.Join("testdata", "decisions", name+".json"), decisionJSON(t, d))
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
	t.Run("8th account at one register", func(t *testing.T) {
		d := Evaluate(p, readRequest(t, "register-8th"), h)
		if d.Outcome != Deny {
			t.Errorf("outcome %s, want deny", d.Outcome)
		}
		if f, _ := findFired(d, "register-accounts"); f.Reason != "8 accounts at register R1 in 30m0s > limit 3" {
			t.Errorf("reason %q (%v)", f.Reason, d.Rules)
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

// TestRuleKinds covers each kind's edges: exactly at the limit, one over,
// window boundaries, empty carts and items the catalog does not know.
func TestRuleKinds(t *testing.T) {
	tests := []struct {
		name    string
		rule    string
		lines   []Line
		pay     Payment
		past    []PastSale
		deny    []string
		want    Outcome
		reason  string // reason of the fired rule "r", "" = must not fire
		offline bool
	}{
		// cart_limit
		{name: "cart at limit", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 2}`,
			lines: []Line{cartons(2), onigiri(5)}, want: Allow},
		{name: "cart over limit", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 2}`,
			lines: []Line{cartons(2), cartons(3)}, want: Deny, reason: "tobacco cartons 5 > limit 2"},
		{name: "cart zero means none", rule: `{id: r, kind: cart_limit, action: review, categories: [tobacco-carton], maxQuantity: 0}`,
			lines: []Line{cartons(1)}, want: Review, reason: "tobacco cartons 1 > limit 0"},
		{name: "cart amount", rule: `{id: r, kind: cart_limit, action: review, categories: [tobacco, tobacco-carton], maxAmount: 10000}`,
			lines: []Line{cartons(1), packs(7)}, want: Review, reason: "tobacco packs and tobacco cartons ¥10,200 > limit ¥10,000"},
		{name: "cart units from catalog", rule: `{id: r, kind: cart_limit, action: review, categories: [tobacco-carton], maxUnits: 20, label: cartons}`,
			lines: []Line{{JAN: "4901234000100", Quantity: 3, UnitPrice: 6000}}, want: Review, reason: "cartons 30 units > limit 20 units"},
		{name: "cart empty", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 0}`,
			want: Allow},
		{name: "cart unknown items", rule: `{id: r, kind: cart_limit, action: review, categories: [unknown], maxQuantity: 3}`,
			lines: []Line{{JAN: "4999999999999", Quantity: 4, UnitPrice: 100}}, want: Review, reason: "unknown items 4 > limit 3"},
		// sale_amount
		{name: "sale at threshold", rule: `{id: r, kind: sale_amount, action: review, maxAmount: 10000}`,
			lines: []Line{onigiri(50)}, want: Allow},
		{name: "sale over threshold", rule: `{id: r, kind: sale_amount, action: review, maxAmount: 10000}`,
			lines: []Line{onigiri(51)}, want: Review, reason: "sale ¥10,200 > limit ¥10,000"},
		{name: "sale empty cart", rule: `{id: r, kind: sale_amount, action: review, maxAmount: 0}`, want: Allow},
		// fresh_topup
		{name: "topup exactly within", rule: `{id: r, kind: fresh_topup, action: review, categories: [tobacco-carton], within: 1h, minAmount: 10000}`,
			lines: []Line{cartons(2)}, pay: Payment{Kind: TokenPG1, Account: "a", TopUpAt: t0.Add(-time.Hour), TopUpAmount: 20000}, want: Review,
			reason: "top-up ¥20,000 1h0m0s before a ¥12,000 sale of tobacco cartons (within 1h0m0s, min ¥10,000)"},
		{name: "topup just too old", rule: `{id: r, kind: fresh_topup, action: review, categories: [tobacco-carton], within: 1h, minAmount: 10000}`,
			lines: []Line{cartons(2)}, pay: Payment{Kind: TokenPG1, Account: "a", TopUpAt: t0.Add(-time.Hour - time.Second), TopUpAmount: 20000}, want: Allow},
		{name: "topup sale below min", rule: `{id: r, kind: fresh_topup, action: review, categories: [tobacco-carton], within: 1h, minAmount: 12001}`,
			lines: []Line{cartons(2)}, pay: Payment{Kind: TokenPG1, Account: "a", TopUpAt: t0.Add(-time.Minute), TopUpAmount: 20000}, want: Allow},
		{name: "topup small ignored", rule: `{id: r, kind: fresh_topup, action: review, within: 1h, minTopUp: 5000}`,
			lines: []Line{cartons(2)}, pay: Payment{Kind: TokenPG1, Account: "a", TopUpAt: t0.Add(-time.Minute), TopUpAmount: 4999}, want: Allow},
		{name: "topup after sale is fresh", rule: `{id: r, kind: fresh_topup, action: deny, within: 1h}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", TopUpAt: t0.Add(time.Minute), TopUpAmount: 1000}, want: Deny,
			reason: "top-up ¥1,000 0s before a ¥200 sale (within 1h0m0s)"},
		{name: "topup no claim", rule: `{id: r, kind: fresh_topup, action: deny, within: 1h}`,
			lines: []Line{cartons(9)}, pay: pay("a"), want: Allow},
		// account_velocity
		{name: "velocity at limit", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 2}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", 10*time.Minute, cartons(1)), pastSale("a", 5*time.Minute, onigiri(1))}, want: Allow},
		{name: "velocity over, boundary sale counts", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 2, maxQuantity: 3}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(2)), pastSale("a", time.Minute, cartons(1))}, want: Review,
			reason: "3 sales of tobacco cartons by the account in 1h0m0s > limit 2; 4 items of tobacco cartons by the account in 1h0m0s > limit 3"},
		{name: "velocity old sale outside window", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 1}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour+time.Second, onigiri(1))}, want: Allow},
		{name: "velocity amount", rule: `{id: r, kind: account_velocity, action: deny, window: 24h, maxAmount: 10000}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(1)), pastSale("b", time.Hour, cartons(9))}, want: Deny,
			reason: "¥12,000 by the account in 24h0m0s > limit ¥10,000"},
		{name: "velocity not for other goods", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Allow},
		// register_accounts
		{name: "accounts at limit", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 3}`,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{pastSale("a", 29*time.Minute, cartons(1)), pastSale("b", 20*time.Minute, cartons(1)), pastSale("b", 10*time.Minute, cartons(1)), pastSale("d", 5*time.Minute, cartons(1))}, want: Allow},
		{name: "accounts over, boundary counts", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 3}`,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{pastSale("a", 30*time.Minute, cartons(1)), pastSale("b", 20*time.Minute, cartons(1)), pastSale("c", 10*time.Minute, cartons(1)), pastSale("e", 10*time.Minute, onigiri(1))}, want: Deny,
			reason: "4 accounts at register R1 in 30m0s > limit 3"},
		{name: "accounts outside window", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 1}`,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{pastSale("a", 31*time.Minute, cartons(1))}, want: Allow},
		{name: "accounts not for other goods", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("d"), want: Allow},
		// new_device
		{name: "device new", rule: `{id: r, kind: new_device, action: review, within: 24h}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", DeviceSince: t0.Add(-10 * time.Minute)}, want: Review,
			reason: "device bound 10m0s before the sale < minimum 24h0m0s"},
		{name: "device exactly old enough", rule: `{id: r, kind: new_device, action: review, within: 24h}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", DeviceSince: t0.Add(-24 * time.Hour)}, want: Allow},
		{name: "device claim absent", rule: `{id: r, kind: new_device, action: review, within: 24h}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Allow},
		{name: "device new but not the category", rule: `{id: r, kind: new_device, action: review, within: 24h, categories: [tobacco]}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", DeviceSince: t0}, want: Allow},
		// account_age
		{name: "account young", rule: `{id: r, kind: account_age, action: review, minAge: 72h}`,
			lines: []Line{packs(1)}, pay: Payment{Kind: TokenPG1, Account: "a", AccountSince: t0.Add(-2 * time.Hour)}, want: Review,
			reason: "account created 2h0m0s before the sale < minimum 72h0m0s"},
		{name: "account exactly old enough", rule: `{id: r, kind: account_age, action: review, minAge: 72h}`,
			lines: []Line{packs(1)}, pay: Payment{Kind: TokenPG1, Account: "a", AccountSince: t0.Add(-72 * time.Hour)}, want: Allow},
		// foreign_login
		{name: "foreign login", rule: `{id: r, kind: foreign_login, action: review, categories: [tobacco]}`,
			lines: []Line{packs(1)}, pay: Payment{Kind: TokenPG1, Account: "a", ForeignLogin: true}, want: Review, reason: "account logged in from abroad in the last 24h"},
		{name: "no foreign login", rule: `{id: r, kind: foreign_login, action: review}`,
			lines: []Line{packs(1)}, pay: pay("a"), want: Allow},
		// denylist
		{name: "denylisted", rule: `{id: r, kind: denylist, action: deny}`,
			lines: []Line{onigiri(1)}, pay: pay("bad"), deny: []string{"bad"}, want: Deny, reason: "account is on the HQ denylist"},
		{name: "not denylisted", rule: `{id: r, kind: denylist, action: deny}`,
			lines: []Line{onigiri(1)}, pay: pay("good"), deny: []string{"bad"}, want: Allow},
		// expr
		{name: "expr true", rule: `{id: r, kind: expr, action: review, expr: "sale.quantities['tobacco-carton'] >= 2 && history.accountSales(duration('1h'), ['tobacco-carton']) >= 1", reason: repeat carton buyer}`,
			lines: []Line{cartons(2)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Minute, cartons(1))}, want: Review, reason: "repeat carton buyer"},
		{name: "expr false", rule: `{id: r, kind: expr, action: review, expr: "sale.quantities['tobacco-carton'] >= 2"}`,
			lines: []Line{cartons(1)}, pay: pay("a"), want: Allow},
		{name: "expr run-time error fails closed", rule: `{id: r, kind: expr, action: review, expr: "sale.amount / (sale.quantity - 1) > 0"}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Review, reason: "expression failed: division by zero"},
		{name: "expr on a cart beyond its cost bound fails closed", rule: `{id: r, kind: expr, action: review, expr: "sale.quantities['tobacco-carton'] >= 2"}`,
			lines: repeatLine(onigiri(1), MaxLines+1), pay: pay("a"), want: Review, reason: "expression not run: sale has 501 lines, expressions are bounded for 500"},
		{name: "expr on a cart at its cost bound runs", rule: `{id: r, kind: expr, action: review, expr: "sale.lines.size() == 500 && sale.lines.all(l, l.category == 'food')"}`,
			lines: repeatLine(onigiri(1), MaxLines), pay: pay("a"), want: Review, reason: "expression is true: sale.lines.size() == 500 && sale.lines.all(l, l.category == 'food')"},
		{name: "expr on a token text beyond its cost bound fails closed", rule: `{id: r, kind: expr, action: review, expr: "token.issuer == 'x'"}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", Issuer: strings.Repeat("i", MaxText+1)}, want: Review,
			reason: "expression not run: a sale or token text of 257 bytes, expressions are bounded for 256"},
		{name: "expr walks the cart", rule: `{id: r, kind: expr, action: deny, expr: "sale.lines.exists(l, l.category == 'tobacco-carton' && l.units >= 20)", reason: twenty packs in cartons}`,
			lines: []Line{onigiri(3), cartons(2)}, pay: pay("a"), want: Deny, reason: "twenty packs in cartons"},
		{name: "expr walks the cart, nothing found", rule: `{id: r, kind: expr, action: deny, expr: "sale.lines.exists(l, l.category == 'tobacco-carton' && l.units >= 30)"}`,
			lines: []Line{onigiri(3), cartons(2)}, pay: pay("a"), want: Allow},
		{name: "expr history and claims", rule: `{id: r, kind: expr, action: deny, expr: "history.denylisted() || (token.foreignLogin && history.registerAccounts(duration('30m'), []) >= 1)"}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", ForeignLogin: true}, past: []PastSale{pastSale("z", time.Minute, onigiri(1))}, want: Deny, reason: "expression is true: history.denylisted() || (token.foreignLogin && history.registerAccounts(duration('30m'), []) >= 1)"},
		// shadow
		{name: "shadow never decides", rule: `{id: r, kind: sale_amount, action: deny, mode: shadow, maxAmount: 0}`,
			lines: []Line{onigiri(1)}, want: Allow, reason: "sale ¥200 > limit ¥0"},
		// offline limits (the base policy has them)
		{name: "offline limits", rule: `{id: r, kind: denylist, action: deny}`, offline: true,
			lines: []Line{cartons(2)}, pay: pay("a"), want: Review},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(t, tt.rule)
			if tt.pay.Kind == "" {
				tt.pay = pay("acct")
			}
			h := NewMemoryHistory(tt.past, tt.deny)
			d := Evaluate(p, Request{Store: "S1", Register: "R1", At: t0, Lines: tt.lines, Payment: tt.pay, Offline: tt.offline}, h)
			if d.Outcome != tt.want {
				t.Errorf("outcome %s, want %s (fired %+v)", d.Outcome, tt.want, d.Rules)
			}
			if d.Policy != (PolicyRef{Name: "t", Version: 7}) {
				t.Errorf("policy ref %+v", d.Policy)
			}
			f, fired := findFired(d, "r")
			switch {
			case tt.reason == "" && fired:
				t.Errorf("rule fired: %+v", f)
			case tt.reason != "" && !fired:
				t.Errorf("rule did not fire, want %q (fired %v)", tt.reason, d.Rules)
			case tt.reason != "" && f.Reason != tt.reason:
				t.Errorf("reason %q\nwant   %q", f.Reason, tt.reason)
			}
		})
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
	if !d.Offline || d.Outcome != Review || fmt.Sprint(d.Rules) != fmt.Sprint(want) {
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
