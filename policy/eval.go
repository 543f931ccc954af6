package policy

import (
	"strconv"
	"time"
)

// TokenRuleID is the id of the built-in rule that fires for an invalid or
// unrecognised payment token.
const TokenRuleID = "token"

// Known token kinds (policy/token sets Payment.Kind to one of them, or
// "unknown").
const (
	TokenPG1    = "pg1"
	TokenEMV    = "emv-cpm"
	TokenOpaque = "opaque"
)

func rank(o Outcome) int {
	switch o {
	case Deny:
		return 2
	case Review:
		return 1
	}
	return 0
}

// evaluation is the state of one Evaluate call; it lives on the stack.
type evaluation struct {
	p    *Policy
	req  Request // by value: a pointer here would make every request escape
	hist History
	d    Decision
}

func (e *evaluation) fire(id, action, mode, reason string) {
	e.d.Rules = append(e.d.Rules, Fired{ID: id, Action: action, Mode: mode, Reason: reason})
	if mode == ModeShadow {
		return
	}
	if o := Outcome(action); rank(o) > rank(e.d.Outcome) {
		e.d.Outcome = o
	}
}

// Evaluate decides one sale. It is pure: time is req.At, state is hist. A
// sale where nothing fires allocates nothing in the built-in rule kinds;
// expr rules reuse pooled inputs and allocate only where CEL boxes values
// (integers of 256 and up, strings read from the sale). A nil policy is
// decided by DefaultFailMode; a nil hist is an empty history.
func Evaluate(p *Policy, req Request, hist History) Decision {
	if p == nil {
		return EvaluateFailMode(DefaultFailMode(), req)
	}
	if hist == nil {
		hist = emptyHistory{}
	}
	e := evaluation{p: p, req: req, hist: hist}
	e.d.Outcome = Allow
	e.d.Policy = PolicyRef{Name: p.Metadata.Name, Version: p.Metadata.Version}
	e.d.Offline = req.Offline

	e.token(p.FailMode.InvalidToken, p.FailMode.UnknownToken)
	e.checkRange()
	var vars *celVars
	if p.vars != nil {
		vars = getCELVars(p, &req, hist)
	}
	for i := range p.Rules {
		e.rule(&p.Rules[i], vars)
	}
	if vars != nil {
		putCELVars(vars)
	}
	if req.Offline {
		e.offline()
	}
	return e.d
}

func (e *evaluation) token(invalid, unknown string) {
	pm := &e.req.Payment
	if pm.Invalid != "" {
		if invalid != string(Review) {
			invalid = string(Deny) // never allow an invalid token
		}
		e.fire(TokenRuleID, invalid, ModeEnforce, "token rejected: "+pm.Invalid)
		return
	}
	switch pm.Kind {
	case TokenPG1, TokenEMV, TokenOpaque:
		return
	}
	switch unknown {
	case string(Allow):
		return
	case string(Deny):
	default:
		unknown = string(Review)
	}
	kind := pm.Kind
	if kind == "" {
		kind = "none"
	}
	e.fire(TokenRuleID, unknown, ModeEnforce, "token matched no known wallet (kind "+kind+")")
}

// category is the line's category, resolved from the catalog when the
// caller left it empty.
func (p *Policy) category(l *Line) string {
	if l.Category != "" {
		return l.Category
	}
	if it, ok := p.Item(l.JAN); ok {
		return it.Category
	}
	return "unknown"
}

func (p *Policy) lineInfo(l *Line) (category string, units int) {
	units = 1
	if it, ok := p.Item(l.JAN); ok {
		units = it.Units
		if l.Category == "" {
			return it.Category, units
		}
	}
	if l.Category == "" {
		return "unknown", units
	}
	return l.Category, units
}

func inCategories(cats []string, c string) bool {
	if len(cats) == 0 {
		return true
	}
	for _, x := range cats {
		if x == c {
			return true
		}
	}
	return false
}

// cartSums adds up the lines in the categories (all lines if none given).
// matched says whether any line was in them, which gates most rules: a rule
// on tobacco says nothing about an onigiri-only sale.
// Sums saturate instead of wrapping; overflow says one did (or a line had
// a negative number), and checkRange denies such a sale.
type cartSums struct {
	quantity int
	amount   int64
	units    int
	matched  bool
	overflow bool
}

func (e *evaluation) sums(cats []string, withUnits bool) cartSums {
	var s cartSums
	for i := range e.req.Lines {
		l := &e.req.Lines[i]
		var c string
		units := 1
		if withUnits {
			c, units = e.p.lineInfo(l)
		} else {
			c = e.p.category(l)
		}
		if !inCategories(cats, c) {
			continue
		}
		s.matched = true
		if l.Quantity < 0 || l.UnitPrice < 0 || units < 0 {
			s.overflow = true // a negative line would lower the sums
			continue
		}
		q := int64(l.Quantity)
		amt, ok1 := mulSat(q, l.UnitPrice)
		u, ok2 := mulSat(int64(units), q)
		amount, ok3 := addSat(s.amount, amt)
		qty, ok4 := addSat(int64(s.quantity), q)
		un, ok5 := addSat(int64(s.units), u)
		s.amount, s.quantity, s.units = amount, int(qty), int(un)
		s.overflow = s.overflow || !(ok1 && ok2 && ok3 && ok4 && ok5)
	}
	return s
}

func (e *evaluation) rule(r *Rule, vars *celVars) {
	req := &e.req
	pm := &req.Payment
	switch r.Kind {
	case KindCartLimit:
		s := e.sums(r.Categories, r.MaxUnits != nil)
		var reason string
		if r.MaxQuantity != nil && s.quantity > *r.MaxQuantity {
			reason = join(reason, r.label+" "+strconv.Itoa(s.quantity)+" > limit "+strconv.Itoa(*r.MaxQuantity))
		}
		if r.MaxAmount != nil && s.amount > *r.MaxAmount {
			reason = join(reason, r.label+" "+yen(s.amount)+" > limit "+yen(*r.MaxAmount))
		}
		if r.MaxUnits != nil && s.units > *r.MaxUnits {
			reason = join(reason, r.label+" "+strconv.Itoa(s.units)+" units > limit "+strconv.Itoa(*r.MaxUnits)+" units")
		}
		if reason != "" {
			e.fire(r.ID, r.Action, r.Mode, reason)
		}

	case KindSaleAmount:
		if r.MaxAmount == nil {
			return // only a Policy built without Load can lack it
		}
		s := e.sums(r.Categories, false)
		if s.amount > *r.MaxAmount {
			what := "sale"
			if len(r.Categories) > 0 {
				what = r.label
			}
			e.fire(r.ID, r.Action, r.Mode, what+" "+yen(s.amount)+" > limit "+yen(*r.MaxAmount))
		}

	case KindFreshTopUp:
		if pm.TopUpAt.IsZero() || pm.TopUpAmount < r.MinTopUp {
			return
		}
		age := req.At.Sub(pm.TopUpAt)
		if age < 0 {
			age = 0 // a top-up "after" the sale is clock skew: as fresh as it gets
		}
		if age > r.Within.D() {
			return
		}
		s := e.sums(r.Categories, false)
		if (len(r.Categories) > 0 && !s.matched) || s.amount < r.MinAmount {
			return
		}
		reason := "top-up " + yen(pm.TopUpAmount) + " " + span(age) + " before a " + yen(s.amount) + " sale"
		if len(r.Categories) > 0 {
			reason += " of " + r.label
		}
		reason += " (within " + r.Within.D().String()
		if r.MinAmount > 0 {
			reason += ", min " + yen(r.MinAmount)
		}
		if r.MinTopUp > 0 {
			reason += ", top-up min " + yen(r.MinTopUp)
		}
		e.fire(r.ID, r.Action, r.Mode, reason+")")

	case KindAccountVelocity:
		if pm.Account == "" {
			return
		}
		s := e.sums(r.Categories, false)
		if len(r.Categories) > 0 && !s.matched {
			return
		}
		t := e.hist.AccountSales(pm.Account, req.At.Add(-r.Window.D()), r.Categories)
		t.Sales++
		t.Amount += s.amount
		t.Quantity += s.quantity
		var reason, of string
		if len(r.Categories) > 0 {
			of = " of "
		}
		// Reason text is built only once a limit is exceeded: the quiet
		// path must not allocate.
		in := func() string {
			if of != "" {
				return " of " + r.label + " by the account in " + r.Window.D().String() + " > limit "
			}
			return " by the account in " + r.Window.D().String() + " > limit "
		}
		if r.MaxSales != nil && t.Sales > *r.MaxSales {
			reason = join(reason, strconv.Itoa(t.Sales)+" sales"+in()+strconv.Itoa(*r.MaxSales))
		}
		if r.MaxAmount != nil && t.Amount > *r.MaxAmount {
			reason = join(reason, yen(t.Amount)+in()+yen(*r.MaxAmount))
		}
		if r.MaxQuantity != nil && t.Quantity > *r.MaxQuantity {
			reason = join(reason, strconv.Itoa(t.Quantity)+" items"+in()+strconv.Itoa(*r.MaxQuantity))
		}
		if reason != "" {
			e.fire(r.ID, r.Action, r.Mode, reason)
		}

	case KindRegisterAccounts:
		s := e.sums(r.Categories, false)
		if !s.matched || r.MaxAccounts == nil {
			return
		}
		n := e.hist.RegisterAccounts(req.Store, req.Register, req.At.Add(-r.Window.D()), r.Categories, pm.Account) + 1
		if n > *r.MaxAccounts {
			e.fire(r.ID, r.Action, r.Mode, strconv.Itoa(n)+" accounts at register "+req.Register+" in "+r.Window.D().String()+" > limit "+strconv.Itoa(*r.MaxAccounts))
		}

	case KindNewDevice:
		if pm.DeviceSince.IsZero() || !e.applies(r) {
			return
		}
		if age := clampAge(req.At.Sub(pm.DeviceSince)); age < r.Within.D() {
			e.fire(r.ID, r.Action, r.Mode, "device bound "+span(age)+" before the sale < minimum "+r.Within.D().String())
		}

	case KindAccountAge:
		if pm.AccountSince.IsZero() || !e.applies(r) {
			return
		}
		if age := clampAge(req.At.Sub(pm.AccountSince)); age < r.MinAge.D() {
			e.fire(r.ID, r.Action, r.Mode, "account created "+span(age)+" before the sale < minimum "+r.MinAge.D().String())
		}

	case KindForeignLogin:
		if pm.ForeignLogin && e.applies(r) {
			e.fire(r.ID, r.Action, r.Mode, "account logged in from abroad in the last 24h")
		}

	case KindDenylist:
		if pm.Account != "" && e.applies(r) && e.hist.Denylisted(pm.Account) {
			e.fire(r.ID, r.Action, r.Mode, "account is on the HQ denylist")
		}

	case KindExpr:
		if r.prog == nil || vars == nil || !e.applies(r) {
			return
		}
		if vars.beyond != "" {
			// The load-time cost bound does not hold for this sale.
			e.fire(r.ID, r.Action, r.Mode, "expression not run: "+vars.beyond)
			return
		}
		out, _, err := r.prog.Eval(vars)
		if err != nil {
			// Fail closed: an expression that cannot finish (division by
			// zero, a missing map key) must not wave the sale through.
			e.fire(r.ID, r.Action, r.Mode, "expression failed: "+err.Error())
			return
		}
		if b, ok := out.Value().(bool); ok && b {
			reason := r.Reason
			if reason == "" {
				reason = "expression is true: " + r.Expr
			}
			e.fire(r.ID, r.Action, r.Mode, reason)
		}
	}
}

// applies gates the claim rules on the rule's categories, if it has any.
func (e *evaluation) applies(r *Rule) bool {
	if len(r.Categories) == 0 {
		return true
	}
	for i := range e.req.Lines {
		if inCategories(r.Categories, e.p.category(&e.req.Lines[i])) {
			return true
		}
	}
	return false
}

// span shows a measured time in a reason. Token claims have one-second
// resolution, so the sub-second part of the sale time is noise there.
func span(d time.Duration) string { return d.Truncate(time.Second).String() }

func clampAge(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (e *evaluation) offline() {
	o := &e.p.Offline
	if o.MaxSaleAmount != nil {
		if s := e.sums(nil, false); s.amount > *o.MaxSaleAmount {
			e.fire("offline:sale", o.Action, ModeEnforce, "offline: sale "+yen(s.amount)+" > limit "+yen(*o.MaxSaleAmount))
		}
	}
	for i := range o.Categories {
		l := &o.Categories[i]
		s := e.sums([]string{l.Category}, false)
		label := e.p.Label(l.Category)
		var reason string
		if l.MaxQuantity != nil && s.quantity > *l.MaxQuantity {
			reason = join(reason, "offline: "+label+" "+strconv.Itoa(s.quantity)+" > limit "+strconv.Itoa(*l.MaxQuantity))
		}
		if l.MaxAmount != nil && s.amount > *l.MaxAmount {
			reason = join(reason, "offline: "+label+" "+yen(s.amount)+" > limit "+yen(*l.MaxAmount))
		}
		if reason != "" {
			id := "offline:" + l.Category
			if i < len(e.p.offlineIDs) {
				id = e.p.offlineIDs[i]
			}
			e.fire(id, o.Action, ModeEnforce, reason)
		}
	}
}

// EvaluateFailMode decides a sale when the agent has no valid policy (none,
// expired, unreadable). Lines carry whatever categories the agent could
// still resolve (its last catalog); everything else is "unknown".
func EvaluateFailMode(fm FailMode, req Request) Decision {
	e := evaluation{p: &Policy{}, req: req, hist: emptyHistory{}}
	e.d.Outcome = Allow
	e.d.FailMode = true
	e.d.Offline = req.Offline
	e.token(fm.InvalidToken, fm.UnknownToken)
	e.checkRange()
	action := fm.Action
	if action != string(Deny) {
		action = string(Review)
	}
	if len(fm.Categories) > 0 {
		for i := range req.Lines {
			if c := req.Lines[i].Category; c != "" && inCategories(fm.Categories, c) {
				e.fire("failmode:category", action, ModeEnforce, "no valid policy: sale contains "+c)
				break
			}
		}
	}
	if fm.MaxSaleAmount != nil {
		if s := e.sums(nil, false); s.amount > *fm.MaxSaleAmount {
			e.fire("failmode:sale", action, ModeEnforce, "no valid policy: sale "+yen(s.amount)+" > limit "+yen(*fm.MaxSaleAmount))
		}
	}
	return e.d
}

type emptyHistory struct{}

func (emptyHistory) AccountSales(string, time.Time, []string) Totals                  { return Totals{} }
func (emptyHistory) RegisterAccounts(string, string, time.Time, []string, string) int { return 0 }
func (emptyHistory) Denylisted(string) bool                                           { return false }
