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
	reason := "top-up " + yen(pm.TopUpAmount) + " " + span(age) + " before a " + yen(s.amount) + " sale"
	if len(r.Categories) > 0 {
		reason += " of " + r.label
	}
	if before > 0 {
		reason += ", " + yen(s.amount+before) + " by the account " + e.scopePlace(r) + " since the top-up"
	}
	reason += " (within " + r.Within.D().String()
	if r.MinAmount > 0 {
		reason += ", min " + yen(r.MinAmount)
	}
	if r.MinTopUp > 0 {
		reason += ", top-up min " + yen(r.MinTopUp)
	}
	why := sale.Reason{Code: sale.CodeFreshTopUp, Value: s.amount, Limit: r.MinAmount, Unit: sale.UnitYen,
		Window: secs(r.Within.D()), Ago: secs(age), TopUp: pm.TopUpAmount, Category: r.names}
	if before > 0 {
		why.Spent = s.amount + before
		why.Scope, why.Place = e.scopeOf(r)
	}
	e.fireRule(r, reason+")", []sale.Reason{why})
}
