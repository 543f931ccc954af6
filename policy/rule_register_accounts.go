package policy

import "strconv"

// KindRegisterAccounts caps the distinct accounts paying for the
// categories at this store and register within window, this one counted
// (maxAccounts): the Shinjuku crew's many accounts at one till.
const KindRegisterAccounts = "register_accounts"

var registerAccountsKind = ruleKind{
	fields: []string{"window", "maxAccounts"},
	check: func(c *ruleCheck) {
		c.positive("window", c.r.Window)
		if c.r.MaxAccounts == nil {
			c.add("maxAccounts", "is required for register_accounts")
		}
	},
	eval: evalRegisterAccounts,
}

func evalRegisterAccounts(e *evaluation, r *Rule) {
	s := e.sums(r.Categories, false)
	if !s.matched || r.MaxAccounts == nil {
		return
	}
	req := &e.req
	n := e.hist.RegisterAccounts(req.Store, req.Register, req.At.Add(-r.Window.D()), r.Categories, req.Payment.Account) + 1
	if n > *r.MaxAccounts {
		e.fire(r.ID, r.Action, r.Mode, strconv.Itoa(n)+" accounts at register "+req.Register+" in "+r.Window.D().String()+" > limit "+strconv.Itoa(*r.MaxAccounts))
	}
}
