package policy

// UnlessAllowlisted, as a rule's `unless`, keeps the rule from firing for an
// account on HQ's allowlist (Request.Allowlisted): an analyst found a sale
// like it legitimate, say a bulk buyer who passed an ID check, and the rule
// should not stop that buyer again until the entry expires. Rules that
// must hold whoever pays (a denylist rule, a hard cart limit) simply do not
// say it.
const UnlessAllowlisted = "allowlisted"

// unless reports an `unless` that names no known fact.
func (v *validator) unless(r *Rule, path string) {
	switch r.Unless {
	case "", UnlessAllowlisted:
	default:
		v.add(path+".unless", "must be %s, not %q", UnlessAllowlisted, r.Unless)
	}
}

// excused reports whether the rule's `unless` holds for the sale.
func (r *Rule) excused(req *Request) bool {
	return r.Unless == UnlessAllowlisted && req.Allowlisted
}
