package policy

// KindAccountAge fires when the token says the account was created less
// than minAge before the sale.
const KindAccountAge = "account_age"

var accountAgeKind = ruleKind{
	fields: []string{"minAge"},
	check: func(c *ruleCheck) {
		c.positive("minAge", c.r.MinAge)
	},
	eval: evalAccountAge,
}

func evalAccountAge(e *evaluation, r *Rule) {
	since := e.req.Payment.AccountSince
	if since.IsZero() || !e.applies(r) {
		return
	}
	if age := clampAge(e.req.At.Sub(since)); age < r.MinAge.D() {
		e.fire(r.ID, r.Action, r.Mode, "account created "+span(age)+" before the sale < minimum "+r.MinAge.D().String())
	}
}
