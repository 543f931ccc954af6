package policy

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Every price, quantity and limit a policy carries is bounded, and lint says
// which one with its path.
func TestLintBounds(t *testing.T) {
	const rule = "  - {id: big, kind: sale_amount, action: review, maxAmount: 10000}\n"
	tests := []struct {
		name     string
		old, new string // replaced once in testBase+rule
		problem  string // "" = loads
	}{
		{"price at the bound", "unitPrice: 6000", "unitPrice: 10000000", ""},
		{"price of 4.6e18", "unitPrice: 6000", "unitPrice: 4600000000000000000",
			"catalog.items[0].unitPrice: must be at most 10000000, got 4600000000000000000"},
		{"range price", "  items:\n", "  ranges:\n    - {from: '45', to: '45', name: x, category: food, unitPrice: 10000001}\n  items:\n",
			"catalog.ranges[0].unitPrice: must be at most 10000000, got 10000001"},
		{"units", "units: 10", "units: 1001", "catalog.items[0].units: must be at most 1000, got 1001"},
		{"rule maxAmount", "maxAmount: 10000}", "maxAmount: 1000000000001}", "rules[0].maxAmount: must be at most 1000000000000, got 1000000000001"},
		{"rule maxAmount at the bound", "maxAmount: 10000}", "maxAmount: 1000000000000}", ""},
		{"rule maxQuantity", "kind: sale_amount, action: review, maxAmount: 10000}", "kind: cart_limit, action: review, categories: [food], maxQuantity: 1000001}",
			"rules[0].maxQuantity: must be at most 1000000, got 1000001"},
		{"rule minTopUp", "kind: sale_amount, action: review, maxAmount: 10000}", "kind: fresh_topup, action: review, within: 1h, minTopUp: 9223372036854775807}",
			"rules[0].minTopUp: must be at most 1000000000000, got 9223372036854775807"},
		{"offline maxSaleAmount", "maxSaleAmount: 10000", "maxSaleAmount: 9223372036854775807",
			"offline.maxSaleAmount: must be at most 1000000000000, got 9223372036854775807"},
		{"offline category maxQuantity", "maxQuantity: 1}", "maxQuantity: 2000000}",
			"offline.categories[0].maxQuantity: must be at most 1000000, got 2000000"},
		{"failMode maxSaleAmount", "offline:\n", "failMode: {maxSaleAmount: 1000000000001}\noffline:\n",
			"failMode.maxSaleAmount: must be at most 1000000000000, got 1000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := testBase + rule
			mod := strings.Replace(src, tt.old, tt.new, 1)
			if mod == src {
				t.Fatalf("%q not in the test policy", tt.old)
			}
			_, err := Load([]byte(mod))
			if tt.problem == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a validation error with %q", err, tt.problem)
			}
			for _, p := range ve.Problems {
				if p.String() == tt.problem {
					return
				}
			}
			t.Fatalf("problems %v, want %q", ve.Problems, tt.problem)
		})
	}
}

// A price of 4.6×10^18 times 2 wrapped the total below zero: the sale was
// allowed with no rule fired. Now the sale is denied with the reason,
// under a policy and without one.
func TestEvaluateHugePrice(t *testing.T) {
	p := testPolicy(t, "{id: big, kind: sale_amount, action: review, maxAmount: 10000}")
	huge := Line{JAN: "4901234000100", Category: "tobacco-carton", Quantity: 2, UnitPrice: 4_600_000_000_000_000_000}
	// With the onigiri after it, the total wrapped below zero.
	tests := []struct {
		name   string
		lines  []Line
		reason string
	}{
		{"huge price", []Line{huge, onigiri(MaxLineQuantity)}, "sale refused: line 1 (4901234000100): unit price ¥4,600,000,000,000,000,000 out of range ¥0..¥10,000,000"},
		{"negative price", []Line{onigiri(1), {JAN: "4901234200012", Category: "food", Quantity: 1, UnitPrice: -500}},
			"sale refused: line 2 (4901234200012): unit price -¥500 out of range ¥0..¥10,000,000"},
		{"quantity beyond the bound", []Line{onigiri(MaxLineQuantity + 1)}, "sale refused: line 1 (4901234200012): quantity 10000 out of range 0..9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{At: t0, Lines: tt.lines, Payment: pay("a")}
			for _, d := range []Decision{Evaluate(p, req, nil), EvaluateFailMode(FailMode{Action: string(Review)}, req)} {
				f, ok := findFired(d, RangeRuleID)
				if d.Outcome != Deny || !ok || f.Reason != tt.reason {
					t.Errorf("failMode %v: %s %+v, want deny with %q", d.FailMode, d.Outcome, d.Rules, tt.reason)
				}
			}
		})
	}
	ok := Evaluate(p, Request{At: t0, Lines: []Line{onigiri(MaxLineQuantity)}, Payment: pay("a")}, nil)
	if _, fired := findFired(ok, RangeRuleID); fired {
		t.Errorf("in-range sale refused: %+v", ok.Rules)
	}
}

// The sums saturate and report overflow instead of wrapping, whatever the
// lines: the check does not rely on the bounds above.
func TestSumsOverflow(t *testing.T) {
	p := testPolicy(t, "{id: big, kind: sale_amount, action: review, maxAmount: 10000}")
	tests := []struct {
		name  string
		lines []Line
		want  cartSums
	}{
		{"fits", []Line{cartons(2), onigiri(3)}, cartSums{quantity: 5, amount: 12600, units: 23, matched: true}},
		{"product wraps", []Line{{JAN: "4901234000100", Quantity: 3, UnitPrice: 4_600_000_000_000_000_000}},
			cartSums{quantity: 3, amount: math.MaxInt64, units: 30, matched: true, overflow: true}},
		{"sum wraps", []Line{{JAN: "1", Quantity: 1, UnitPrice: math.MaxInt64}, {JAN: "2", Quantity: 1, UnitPrice: 1}},
			cartSums{quantity: 2, amount: math.MaxInt64, units: 2, matched: true, overflow: true}},
		{"negative quantity", []Line{onigiri(2), {JAN: "4901234200012", Quantity: -1, UnitPrice: 200}},
			cartSums{quantity: 2, amount: 400, units: 2, matched: true, overflow: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := evaluation{p: p, req: Request{Lines: tt.lines}}
			if got := e.sums(nil, true); got != tt.want {
				t.Errorf("sums = %+v, want %+v", got, tt.want)
			}
		})
	}
}
