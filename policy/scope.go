package policy

// History scopes of the rules that read past sales (register_accounts,
// account_velocity, fresh_topup). A crew that walks to the next till is
// still at the same store, so store is every such kind's default; register
// keeps a limit meant for one till, say on a store with many.
const (
	ScopeStore    = "store"
	ScopeRegister = "register"
)

// scope reports a Rule.Scope that is neither register nor store; empty is
// the default, store.
func (c *ruleCheck) scope() {
	switch c.r.Scope {
	case "", ScopeStore, ScopeRegister:
	default:
		c.add("scope", "must be register or store, not %q", c.r.Scope)
	}
}

// scopeRegister is the register argument of r's History lookups: this
// sale's register for register scope, "" (the whole store) otherwise. A
// request without a register is asked about the whole store, the stricter
// reading.
func (e *evaluation) scopeRegister(r *Rule) string {
	if r.Scope == ScopeRegister {
		return e.req.Register
	}
	return ""
}

// scopeOf is where the rule counted past sales, as reasons carry it: the
// scope and the store or register id.
func (e *evaluation) scopeOf(r *Rule) (scope, place string) {
	if r.Scope == ScopeRegister {
		return ScopeRegister, e.req.Register
	}
	return ScopeStore, e.req.Store
}

// wScopePlace writes where r counted, for its sentence: "at register R1"
// or "at store S001".
func (e *evaluation) wScopePlace(r *Rule) {
	if reg := e.scopeRegister(r); reg != "" {
		e.w("at register ")
		e.w(reg)
		return
	}
	e.w("at store ")
	e.w(e.req.Store)
}
