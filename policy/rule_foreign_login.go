package policy

import "github.com/posguard/posguard/policy/sale"

// KindForeignLogin fires when the token says the account logged in from
// abroad in the last 24 hours. It has no fields of its own.
const KindForeignLogin = "foreign_login"

var foreignLoginKind = ruleKind{eval: evalForeignLogin}

func evalForeignLogin(e *evaluation, r *Rule) {
	if e.req.Payment.ForeignLogin && e.applies(r) {
		e.w("account logged in from abroad in the last 24h")
		e.fireRule(r, sale.Reason{Code: sale.CodeForeignLogin, Category: r.names})
	}
}
