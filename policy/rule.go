package policy

import (
	"reflect"
	"strings"

	"github.com/posguard/posguard/policy/sale"
)

// Each rule kind is one file, rule_<kind>.go: its name, the Rule fields it
// reads, what it checks at load and how it judges a sale, registered by one
// entry in ruleKinds. The checks every rule gets (action, mode, categories,
// fields the kind does not read, negative limits) are here, so a kind's
// file holds only what is particular to it.

// ruleKind is one kind of rule.
type ruleKind struct {
	// fields are the yaml names of the kind-specific Rule fields the kind
	// reads (its part of Rule); any other one set is reported as not used.
	fields []string
	// check reports what is wrong with a rule of this kind, after the
	// checks every rule gets; nil when there is nothing more to check.
	check func(c *ruleCheck)
	// eval judges one sale. Load stores it on the Rule, so Evaluate calls
	// it without a lookup or an interface method.
	eval ruleEval
}

type ruleEval func(e *evaluation, r *Rule)

// ruleKinds is every kind a policy may use; adding a kind is its file and
// one entry here.
var ruleKinds = map[string]ruleKind{
	KindCartLimit:        cartLimitKind,
	KindSaleAmount:       saleAmountKind,
	KindFreshTopUp:       freshTopUpKind,
	KindAccountVelocity:  accountVelocityKind,
	KindRegisterAccounts: registerAccountsKind,
	KindNewDevice:        newDeviceKind,
	KindAccountAge:       accountAgeKind,
	KindForeignLogin:     foreignLoginKind,
	KindDenylist:         denylistKind,
	KindExpr:             exprKind,
}

// ruleCheck is one rule under validation, as a kind's check sees it.
type ruleCheck struct {
	v    *validator
	p    *Policy
	r    *Rule
	path string // "rules[3]"
}

// add reports a problem with field ("" for the rule as a whole).
func (c *ruleCheck) add(field, format string, args ...any) {
	path := c.path
	if field != "" {
		path += "." + field
	}
	c.v.add(path, format, args...)
}

// positive reports a duration field that is not above zero; for the kinds
// that read it, zero (unset) means nothing sensible.
func (c *ruleCheck) positive(field string, d Duration) {
	if d <= 0 {
		c.add(field, "must be > 0")
	}
}

// commonRuleFields are the Rule fields every kind reads.
var commonRuleFields = map[string]bool{
	"id": true, "kind": true, "action": true, "mode": true, "score": true,
	"description": true, "categories": true, "label": true, "names": true, "unless": true,
}

// kindFieldsSet lists the kind-specific fields set on r, in document
// order. Read off Rule's yaml tags, so a field added for a new kind is
// covered without another list to keep in step.
func (r *Rule) kindFieldsSet() []string {
	v := reflect.ValueOf(r).Elem()
	t := v.Type()
	var set []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || commonRuleFields[name] || v.Field(i).IsZero() {
			continue
		}
		set = append(set, name)
	}
	return set
}

// rule validates one rule and, when its kind is known, stores the kind's
// evaluation on it.
func (v *validator) rule(p *Policy, r *Rule, path string) {
	switch {
	case r.Action == ActionScore && r.Score <= 0:
		v.add(path+".action", "score needs a score > 0 on the rule")
	case r.Action != ActionScore && !validAction(r.Action):
		v.add(path+".action", "must be review, deny or score, not %q", r.Action)
	}
	if r.Score < 0 {
		v.add(path+".score", "must be >= 0")
	}
	v.atMost(path+".score", int64(r.Score), MaxScore)
	switch r.Mode {
	case "":
		r.Mode = ModeEnforce
	case ModeEnforce, ModeShadow:
	default:
		v.add(path+".mode", "must be enforce or shadow, not %q", r.Mode)
	}
	labels := make([]string, 0, len(r.Categories))
	ja := make([]string, 0, len(r.Categories))
	for j, c := range r.Categories {
		l, ok := p.labels[c]
		if !ok {
			v.add(idx(path+".categories", j), "unknown category %q", c)
		}
		labels = append(labels, l)
		ja = append(ja, p.names[c].JA)
	}
	v.unless(r, path)
	r.label = r.Label
	if r.label == "" {
		r.label = r.Names.EN
	}
	if r.label == "" {
		r.label = joinLabels(labels)
	}
	if len(r.Categories) > 0 {
		// Japanese only when every category has a Japanese name: a
		// half-translated list reads worse than the English label.
		jaNames := strings.Join(ja, "・")
		if contains(ja, "") {
			jaNames = ""
		}
		if r.Names.JA != "" {
			jaNames = r.Names.JA
		}
		en := r.Names.EN
		if en == "" {
			en = r.label
		}
		r.names = sale.Names{ID: strings.Join(r.Categories, ","), JA: jaNames, EN: en}
	}
	kind, ok := ruleKinds[r.Kind]
	if !ok {
		if r.Kind == "" {
			v.add(path+".kind", "is required")
		} else {
			v.add(path+".kind", "unknown rule kind %q", r.Kind)
		}
		return
	}
	for _, f := range r.kindFieldsSet() {
		if !contains(kind.fields, f) {
			v.add(path+"."+f, "not used by kind %s", r.Kind)
		}
	}
	v.limitSigns(r, path)
	if kind.check != nil {
		kind.check(&ruleCheck{v: v, p: p, r: r, path: path})
	}
	r.eval = kind.eval
	r.windowText, r.withinText, r.minAgeText = r.Window.D().String(), r.Within.D().String(), r.MinAge.D().String()
}

// limitSigns reports negative and out-of-bounds limits and minimums,
// whichever kind the rule is: no count or amount below zero means anything,
// and none above the bounds in bounds.go can be summed safely.
func (v *validator) limitSigns(r *Rule, path string) {
	nonNeg := func(name string, n *int) {
		if n != nil && *n < 0 {
			v.add(path+"."+name, "must be >= 0")
		}
		v.maxCount(path+"."+name, n)
	}
	nonNeg("maxQuantity", r.MaxQuantity)
	nonNeg("maxUnits", r.MaxUnits)
	nonNeg("maxSales", r.MaxSales)
	nonNeg("maxAccounts", r.MaxAccounts)
	if r.MaxAmount != nil && *r.MaxAmount < 0 {
		v.add(path+".maxAmount", "must be >= 0")
	}
	if r.MinAmount < 0 {
		v.add(path+".minAmount", "must be >= 0")
	}
	if r.MinTopUp < 0 {
		v.add(path+".minTopUp", "must be >= 0")
	}
	v.maxAmount(path+".maxAmount", r.MaxAmount)
	v.maxAmount(path+".minAmount", &r.MinAmount)
	v.maxAmount(path+".minTopUp", &r.MinTopUp)
}

// expressionEnv is the CEL environment of expr rules, built when the first
// one is checked; nil (reported once, at "rules") when it cannot be built.
func (v *validator) expressionEnv() *celEnv {
	if !v.envBuilt {
		v.envBuilt = true
		env, err := newCELEnv()
		if err != nil {
			v.add("rules", "cannot build the expression environment: %v", err)
		}
		v.env = env
	}
	return v.env
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// joinLabels makes "tobacco, tobacco cartons and e-cigarettes".
func joinLabels(l []string) string {
	switch len(l) {
	case 0:
		return "items"
	case 1:
		return l[0]
	}
	return strings.Join(l[:len(l)-1], ", ") + " and " + l[len(l)-1]
}
