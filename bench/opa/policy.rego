# The rules of policy/testdata/chain-default.yaml written in Rego (v1), for
# the decision-latency comparison with posguard's own engine. Same limits,
# same semantics (see the YAML for the why of each rule); only the reason
# sentences are left out, which favours OPA.
#
# input: the sale (times in unix nanoseconds, 0 = the token does not say):
#   {at, store, register, offline, lines: [{jan, category, quantity, unitPrice}],
#    payment: {kind, account, invalid, deviceSince, accountSince, topUpAt,
#              topUpAmount, foreignLogin}}
# data.history: past sales indexed like policy.MemoryHistory:
#   accounts[account] and registers[store][register] are lists of
#   {at, account, cats: {category: {q, a}}}; data.denylist[account] = true.
package posguard

tobacco := {"tobacco", "tobacco-carton", "e-cigarette"}

# Units per scan of the catalog items that are more than one unit.
units := {"4901234000100": 10, "4901234000209": 10, "4901234000315": 10}

minute := 60000000000

hour := 60 * minute

line_units(l) := units[l.jan] if units[l.jan]

else := 1

pack_units(l) := line_units(l) * l.quantity

line_amount(l) := l.quantity * l.unitPrice

sale_amount := sum([line_amount(l) | some l in input.lines])

amount_in(cats) := sum([line_amount(l) | some l in input.lines; l.category in cats])

qty_in(cats) := sum([l.quantity | some l in input.lines; l.category in cats])

matched(cats) if {
	some l in input.lines
	l.category in cats
}

age(t) := max([input.at - t, 0])

enforce(id, action) := {"id": id, "action": action, "mode": "enforce"}

# The built-in token rule: failMode.invalidToken deny, unknownToken review.
fired contains enforce("token", "deny") if input.payment.invalid != ""

fired contains enforce("token", "review") if {
	input.payment.invalid == ""
	not input.payment.kind in {"pg1", "emv-cpm", "opaque"}
}

fired contains enforce("sale-over-10000", "review") if sale_amount > 10000

fired contains enforce("tobacco-over-50000", "deny") if amount_in(tobacco) > 50000

fired contains enforce("carton-cap", "deny") if qty_in({"tobacco-carton"}) > 2

fired contains enforce("e-cigarette-units", "review") if {
	sum([pack_units(l) | some l in input.lines; l.category == "e-cigarette"]) > 20
}

fired contains enforce("fresh-topup", "review") if {
	input.payment.topUpAt != 0
	age(input.payment.topUpAt) <= hour
	matched(tobacco)
	amount_in(tobacco) >= 10000
}

# Distinct other accounts that paid for tobacco at this register in the
# last 30 minutes, plus this one.
fired contains enforce("register-accounts", "deny") if {
	matched(tobacco)
	since := input.at - (30 * minute)
	others := {s.account |
		some s in data.history.registers[input.store][input.register]
		s.at >= since
		s.account != ""
		s.account != input.payment.account
		tobacco_hit(s)
	}
	count(others) + 1 > 3
}

tobacco_hit(s) if {
	some c, _ in s.cats
	c in tobacco
}

account_past := [s |
	some s in data.history.accounts[input.payment.account]
	s.at >= input.at - (24 * hour)
	tobacco_hit(s)
]

account_sales := count(account_past) + 1

account_amount := sum([t.a | some s in account_past; some c, t in s.cats; c in tobacco]) + amount_in(tobacco)

fired contains enforce("account-velocity", "review") if {
	input.payment.account != ""
	matched(tobacco)
	account_sales > 3
}

fired contains enforce("account-velocity", "review") if {
	input.payment.account != ""
	matched(tobacco)
	account_amount > 60000
}

fired contains enforce("new-device", "review") if {
	input.payment.deviceSince != 0
	matched(tobacco)
	age(input.payment.deviceSince) < 24 * hour
}

fired contains enforce("account-age", "review") if {
	input.payment.accountSince != 0
	matched(tobacco)
	age(input.payment.accountSince) < 72 * hour
}

fired contains enforce("foreign-login", "review") if {
	input.payment.foreignLogin
	matched(tobacco)
}

fired contains enforce("denylist", "deny") if {
	input.payment.account != ""
	data.denylist[input.payment.account]
}

fired contains {"id": "drains-topup", "action": "deny", "mode": "shadow"} if {
	input.payment.topUpAmount >= 10000
	(sale_amount * 10) >= input.payment.topUpAmount * 9
	matched(tobacco)
}

fired contains enforce("offline:sale", "review") if {
	input.offline
	sale_amount > 10000
}

fired contains enforce("offline:tobacco-carton", "review") if {
	input.offline
	qty_in({"tobacco-carton"}) > 1
}

fired contains enforce("offline:e-cigarette", "review") if {
	input.offline
	amount_in({"e-cigarette"}) > 6000
}

outcome := "deny" if {
	some f in fired
	f.mode == "enforce"
	f.action == "deny"
} else := "review" if {
	some f in fired
	f.mode == "enforce"
	f.action == "review"
} else := "allow"

decision := {"outcome": outcome, "fired": fired}
