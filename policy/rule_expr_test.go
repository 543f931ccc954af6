package policy

import (
	"strings"
	"testing"
	"time"
)

func TestExprRule(t *testing.T) {
	testRuleCases(t, []ruleCase{
		{name: "true, with its reason", rule: `{id: r, kind: expr, action: review, expr: "sale.quantities['tobacco-carton'] >= 2 && history.accountSales(duration('1h'), ['tobacco-carton']) >= 1", reason: repeat carton buyer}`,
			lines: []Line{cartons(2)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Minute, cartons(1))}, want: Review, reason: "repeat carton buyer"},
		{name: "at the edge: false", rule: `{id: r, kind: expr, action: review, expr: "sale.quantities['tobacco-carton'] >= 2"}`,
			lines: []Line{cartons(1)}, pay: pay("a"), want: Allow},
		{name: "true without a reason says the expression", rule: `{id: r, kind: expr, action: review, expr: "sale.quantities['tobacco-carton'] >= 2"}`,
			lines: []Line{cartons(2)}, pay: pay("a"), want: Review, reason: "expression is true: sale.quantities['tobacco-carton'] >= 2"},
		{name: "run-time error fails closed", rule: `{id: r, kind: expr, action: review, expr: "sale.amount / (sale.quantity - 1) > 0"}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Review, reason: "expression failed: division by zero"},
		{name: "a cart beyond its cost bound fails closed", rule: `{id: r, kind: expr, action: review, expr: "sale.quantities['tobacco-carton'] >= 2"}`,
			lines: repeatLine(onigiri(1), MaxLines+1), pay: pay("a"), want: Review, reason: "expression not run: sale has 501 lines, expressions are bounded for 500"},
		{name: "a cart at its cost bound runs", rule: `{id: r, kind: expr, action: review, expr: "sale.lines.size() == 500 && sale.lines.all(l, l.category == 'food')"}`,
			lines: repeatLine(onigiri(1), MaxLines), pay: pay("a"), want: Review, reason: "expression is true: sale.lines.size() == 500 && sale.lines.all(l, l.category == 'food')"},
		{name: "a token text beyond its cost bound fails closed", rule: `{id: r, kind: expr, action: review, expr: "token.issuer == 'x'"}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", Issuer: strings.Repeat("i", MaxText+1)}, want: Review,
			reason: "expression not run: a sale or token text of 257 bytes, expressions are bounded for 256"},
		{name: "walks the cart", rule: `{id: r, kind: expr, action: deny, expr: "sale.lines.exists(l, l.category == 'tobacco-carton' && l.units >= 20)", reason: twenty packs in cartons}`,
			lines: []Line{onigiri(3), cartons(2)}, pay: pay("a"), want: Deny, reason: "twenty packs in cartons"},
		{name: "walks the cart, nothing found", rule: `{id: r, kind: expr, action: deny, expr: "sale.lines.exists(l, l.category == 'tobacco-carton' && l.units >= 30)"}`,
			lines: []Line{onigiri(3), cartons(2)}, pay: pay("a"), want: Allow},
		{name: "history and claims", rule: `{id: r, kind: expr, action: deny, expr: "history.denylisted() || (token.foreignLogin && history.registerAccounts(duration('30m'), []) >= 1)"}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenPG1, Account: "a", ForeignLogin: true}, past: []PastSale{pastSale("z", time.Minute, onigiri(1))}, want: Deny,
			reason: "expression is true: history.denylisted() || (token.foreignLogin && history.registerAccounts(duration('30m'), []) >= 1)"},
		{name: "store-wide accounts: the other till counts, the other store does not", rule: `{id: r, kind: expr, action: deny, expr: "history.storeAccounts(duration('30m'), ['tobacco-carton']) >= 2", reason: crew}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: crewAtTwoTills(), want: Deny, reason: "crew"},
		{name: "register accounts: this till only", rule: `{id: r, kind: expr, action: deny, expr: "history.registerAccounts(duration('30m'), ['tobacco-carton']) >= 2"}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: crewAtTwoTills(), want: Allow},
		{name: "account totals are store-wide", rule: `{id: r, kind: expr, action: deny, expr: "history.accountSales(duration('1h'), []) == 2 && history.accountQuantity(duration('1h'), []) == 3 && history.accountAmount(duration('1h'), []) == 18000", reason: both tills}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: crewAtTwoTills(), want: Deny, reason: "both tills"},
		{name: "not the category: not run", rule: `{id: r, kind: expr, action: deny, categories: [tobacco], expr: "sale.amount / 0 > 0"}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Allow},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: expr, action: deny, mode: shadow, expr: "sale.amount > 100", reason: big}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Allow, reason: "big"},
	})
}

func TestExprRuleLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "complete", rule: `{id: r, kind: expr, action: review, expr: "sale.amount > 0", reason: why}`},
		{name: "no expression", rule: `{id: r, kind: expr, action: review, reason: why}`, problems: []string{
			"rules[0].expr: is required for expr",
		}},
		{name: "not boolean", rule: `{id: r, kind: expr, action: review, expr: "sale.amount"}`, problems: []string{
			"rules[0].expr: must be a boolean expression, not int",
		}},
		{name: "a field of another kind", rule: `{id: r, kind: expr, action: review, expr: "true", maxAmount: 1}`, problems: []string{
			"rules[0].maxAmount: not used by kind expr",
		}},
	})
}

// crewAtTwoTills: account a bought at both tills of S1 and at S2; b at R1,
// c at R2 and d at S2 bought cartons too.
func crewAtTwoTills() []PastSale {
	return []PastSale{
		pastSale("a", 20*time.Minute, cartons(1)),
		pastAt("S1", "R2", pastSale("a", 10*time.Minute, cartons(2))),
		pastAt("S2", "R1", pastSale("a", 5*time.Minute, cartons(4))),
		pastSale("b", 15*time.Minute, cartons(1)),
		pastAt("S1", "R2", pastSale("c", 5*time.Minute, cartons(1))),
		pastAt("S2", "R1", pastSale("d", 5*time.Minute, cartons(1))),
	}
}
