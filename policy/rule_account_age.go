package policy

import "github.com/posguard/posguard/policy/sale"

// KindAccountAge fires when the token says the account was created less
// than minAge before the sale.
const KindAccountAge = "account_age"

var accountAgeKind = ruleKind{
	fields: []string{"minAge"},
	check: func(c *ruleCheck) {
		c.positive("minAge", c.r.MinAge)
	},
	eval: func(e *evaluation, r *Rule) {
		e.claimTooRecent(r, e.req.Payment.AccountSince, r.MinAge.D(), durText(r.minAgeText, r.MinAge), "account created", sale.CodeNewAccount)
	},
}
