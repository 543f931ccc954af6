package policy

import "github.com/posguard/posguard/policy/sale"

// KindFreshTopUp catches the 7pay pattern of spending a top-up at once: the
// token's top-up of at least minTopUp yen was at most within before the
// sale, and what the account spent on the categories (if any) since the
// top-up, this sale included, is at least minAmount. Scope store (the
// default) counts the account's sales at every till of the store since the
// top-up, so splitting the spend between tills does not hide it; scope
// register counts this till's only.
const KindFreshTopUp = "fresh_topup"

var freshTopUpKind = ruleKind{
	fields: []string{"within", "minAmount", "minTopUp", "scope"},
	check: func(c *ruleCheck) {
		c.positive("within", c.r.Within)
		c.scope()
	},
	eval: evalFreshTopUp,
}

func evalFreshTopUp(e *evaluation, r *Rule) {
	pm := &e.req.Payment
	if pm.TopUpAt.IsZero() || pm.TopUpAmount < r.MinTopUp {
		return
	}
	age := e.req.At.Sub(pm.TopUpAt)
	if age < 0 {
		age = 0 // a top-up "after" the sale is clock skew: as fresh as it gets
	}
	if age > r.Within.D() {
		return
	}
	s := e.sums(r.Categories, false)
	if len(r.Categories) > 0 && !s.matched {
		return
	}
	// The account's earlier spending since the top-up is asked for only
	// when this sale alone is under minAmount: it can only add.
	var before int64
	if s.amount < r.MinAmount {
		if pm.Account == "" {
			return
		}
		before = e.hist.AccountSales(pm.Account, e.req.Store, e.scopeRegister(r), e.req.At.Add(-age), r.Categories).Amount
		if s.amount+before < r.MinAmount {
			return
		}
	}
	e.w("top-up ")
	e.wYen(pm.TopUpAmount)
	e.w(" ")
	e.wSpan(age)
	e.w(" before a ")
	e.wYen(s.amount)
	e.w(" sale")
	if len(r.Categories) > 0 {
		e.w(" of ")
		e.w(r.label)
	}
	if before > 0 {
		e.w(", ")
		e.wYen(s.amount + before)
		e.w(" by the account ")
		e.wScopePlace(r)
		e.w(" since the top-up")
	}
	e.w(" (within ")
	e.w(durText(r.withinText, r.Within))
	if r.MinAmount > 0 {
		e.w(", min ")
		e.wYen(r.MinAmount)
	}
	if r.MinTopUp > 0 {
		e.w(", top-up min ")
		e.wYen(r.MinTopUp)
	}
	e.w(")")
	why := sale.Reason{Code: sale.CodeFreshTopUp, Value: s.amount, Limit: r.MinAmount, Unit: sale.UnitYen,
		Window: secs(r.Within.D()), Ago: secs(age), TopUp: pm.TopUpAmount, Category: r.names}
	if before > 0 {
		why.Spent = s.amount + before
		why.Scope, why.Place = e.scopeOf(r)
	}
	e.fireRule(r, why)
}
