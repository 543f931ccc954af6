package policy

import "github.com/posguard/posguard/policy/sale"

// KindRegisterAccounts caps the distinct accounts paying for the
// categories within window, this one counted (maxAccounts): the Shinjuku
// crew's many accounts. With scope store (the default) it counts across
// every till of the store, so the crew cannot split its accounts between
// tills; scope register counts at this till only. The kind keeps its name
// from when each register guarded only itself.
const KindRegisterAccounts = "register_accounts"

var registerAccountsKind = ruleKind{
	fields: []string{"window", "maxAccounts", "scope"},
	check: func(c *ruleCheck) {
		c.positive("window", c.r.Window)
		if c.r.MaxAccounts == nil {
			c.add("maxAccounts", "is required for register_accounts")
		}
		c.scope()
	},
	eval: evalRegisterAccounts,
}

func evalRegisterAccounts(e *evaluation, r *Rule) {
	s := e.sums(r.Categories, false)
	if !s.matched || r.MaxAccounts == nil {
		return
	}
	req := &e.req
	n := e.hist.DistinctAccounts(req.Store, e.scopeRegister(r), req.At.Add(-r.Window.D()), r.Categories, req.Payment.Account) + 1
	if n > *r.MaxAccounts {
		scope, place := e.scopeOf(r)
		e.wInt(int64(n))
		e.w(" accounts ")
		e.wScopePlace(r)
		e.w(" in ")
		e.w(durText(r.windowText, r.Window))
		e.w(" > limit ")
		e.wInt(int64(*r.MaxAccounts))
		e.fireRule(r, sale.Reason{Code: sale.CodeAccounts, Value: int64(n), Limit: int64(*r.MaxAccounts), Unit: sale.UnitAccounts,
			Window: secs(r.Window.D()), Scope: scope, Place: place, Category: r.names})
	}
}
