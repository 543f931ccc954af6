package policy

import (
	"testing"
	"time"
)

// benchCart is a 20-line sale with a tobacco pack in it, so every tobacco
// rule runs its history lookups, but nothing fires.
func benchCart() []Line {
	lines := make([]Line, 0, 20)
	for i := 0; i < 19; i++ {
		if i%2 == 0 {
			lines = append(lines, Line{JAN: "4901234200012", Category: "food", Quantity: 1, UnitPrice: 200})
		} else {
			lines = append(lines, Line{JAN: "4901234200029", Category: "drink", Quantity: 1, UnitPrice: 300})
		}
	}
	return append(lines, Line{JAN: "4901234000018", Category: "tobacco", Quantity: 1, UnitPrice: 600})
}

// benchHistory is a warm register: 500 sales over the last day spread over
// 50 accounts and 3 registers, 20 of them by the benchmark's account.
func benchHistory(at time.Time) *MemoryHistory {
	var sales []PastSale
	regs := []string{"R1", "R2", "R3"}
	for i := 0; i < 500; i++ {
		acct := "acct-" + string(rune('A'+i%50))
		if i%25 == 0 {
			acct = "bench"
		}
		sales = append(sales, PastSale{
			At: at.Add(-time.Duration(i) * 3 * time.Minute), Account: acct, Store: "S1", Register: regs[i%3],
			Lines: []Line{{JAN: "4901234200012", Category: "food", Quantity: 2, UnitPrice: 200}},
		})
		if i%10 == 5 && acct != "bench" {
			sales[i].Lines = append(sales[i].Lines, Line{JAN: "4901234000018", Category: "tobacco", Quantity: 1, UnitPrice: 600})
		}
	}
	return NewMemoryHistory(sales, []string{"acct-flagged"})
}

func benchRequest() Request {
	at := time.Date(2026, 7, 4, 12, 0, 0, 0, time.UTC)
	return Request{SaleID: "b", Store: "S1", Register: "R1", At: at, Lines: benchCart(), Payment: Payment{
		Kind: TokenPG1, Account: "bench", DeviceSince: at.AddDate(-1, 0, 0), AccountSince: at.AddDate(-2, 0, 0),
	}}
}

func benchEvaluate(b *testing.B, p *Policy, req Request) {
	h := benchHistory(req.At)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := Evaluate(p, req, h)
		if d.Outcome == "" {
			b.Fatal("no outcome")
		}
	}
}

// BenchmarkEvaluate: the example policy as shipped (with its CEL rule).
func BenchmarkEvaluate(b *testing.B) {
	req := benchRequest()
	if d := Evaluate(loadExample(b), req, benchHistory(req.At)); d.Outcome != Allow || len(d.Rules) != 0 {
		b.Fatalf("bench sale should pass quietly: %+v", d)
	}
	benchEvaluate(b, loadExample(b), req)
}

// BenchmarkEvaluateExprRuns: a sale that reads the whole expression of the
// example's drains-topup rule (a ¥10,000 top-up, a ¥10,000 cart of 20 food
// lines, so sale.lines.exists walks every line) and still passes quietly.
func BenchmarkEvaluateExprRuns(b *testing.B) {
	req := benchRequest()
	req.Payment.TopUpAmount = 10_000
	req.Payment.TopUpAt = req.At.Add(-2 * time.Hour)
	req.Lines = req.Lines[:0:0]
	for i := 0; i < 20; i++ {
		req.Lines = append(req.Lines, Line{JAN: "4901234200012", Category: "food", Quantity: 1, UnitPrice: 500})
	}
	if d := Evaluate(loadExample(b), req, benchHistory(req.At)); d.Outcome != Allow || len(d.Rules) != 0 {
		b.Fatalf("bench sale should pass quietly: %+v", d)
	}
	benchEvaluate(b, loadExample(b), req)
}

// BenchmarkEvaluateNoExpr: the example policy without its expr rule, to
// show the built-in kinds allocate nothing when no rule fires.
func BenchmarkEvaluateNoExpr(b *testing.B) {
	p := loadExample(b)
	var rules []Rule
	for _, r := range p.Rules {
		if r.Kind != KindExpr {
			rules = append(rules, r)
		}
	}
	p.Rules = rules
	req := benchRequest()
	if d := Evaluate(p, req, benchHistory(req.At)); d.Outcome != Allow || len(d.Rules) != 0 {
		b.Fatalf("bench sale should pass quietly: %+v", d)
	}
	benchEvaluate(b, p, req)
}

// BenchmarkEvaluateFiring: the Saitama sale, where eight rules fire and
// their reasons are built.
func BenchmarkEvaluateFiring(b *testing.B) {
	benchEvaluate(b, loadExample(b), readRequest(b, "topup-90400"))
}

// BenchmarkEvaluateFiringUnscored: the same sale under the example as it
// was before scores (testdata/unscored.yaml), the rules of
// BenchmarkEvaluateFiring before issue 16: what reason codes and category
// names cost on their own.
func BenchmarkEvaluateFiringUnscored(b *testing.B) {
	benchEvaluate(b, loadExampleUnscored(b), readRequest(b, "topup-90400"))
}

func BenchmarkLoad(b *testing.B) {
	data := []byte(mustRead(b, "testdata/chain-default.yaml"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateExprNearLimit: an expression the loader accepts with a
// worst-case cost of 45,003 of the 50,000 allowed (a regular expression
// over every JAN), run on the worst sale the bound assumes: how long the
// cost limit lets a register spend on one expr rule.
func BenchmarkEvaluateExprNearLimit(b *testing.B) {
	p := testPolicy(b, `{id: r, kind: expr, action: review, expr: "sale.lines.exists(l, l.jan.matches('^49[0-9]{11}$'))"}`)
	benchEvaluate(b, p, worstRequest())
}

// BenchmarkEvaluateFiringDecider: the Saitama sale decided by a reused
// Decider, as the backtest decides (no sentences, storage reused).
func BenchmarkEvaluateFiringDecider(b *testing.B) {
	p, req := loadExample(b), readRequest(b, "topup-90400")
	h := benchHistory(req.At)
	var dc Decider
	b.ReportAllocs()
	for b.Loop() {
		if d := dc.Evaluate(p, req, h); d.Outcome == "" {
			b.Fatal("no outcome")
		}
	}
}
