package policy

// MaxScore bounds a rule's score and the thresholds, so that the sum over
// any policy's rules stays far from overflowing an int.
const MaxScore = 1000

// scores checks the thresholds against the rules' scores: a threshold
// without scoring rules, or scores without a threshold, or a band no sale
// can reach, is a policy that does not do what its author meant.
func (v *validator) scores(p *Policy) {
	t := p.Thresholds
	for _, f := range []struct {
		key string
		n   int
	}{{"review", t.Review}, {"deny", t.Deny}} {
		if f.n < 0 {
			v.add("thresholds."+f.key, "must be > 0")
		}
		v.atMost("thresholds."+f.key, int64(f.n), MaxScore*MaxScore)
	}
	if t.Review > 0 && t.Deny > 0 && t.Deny <= t.Review {
		v.add("thresholds.deny", "%d must be above review (%d)", t.Deny, t.Review)
	}
	total, first := 0, ""
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Score > 0 && first == "" {
			first = idx("rules", i) + ".score"
		}
		if r.Score > 0 && r.Mode != ModeShadow {
			total += r.Score
		}
	}
	switch {
	case first != "" && !t.set():
		v.add("thresholds", "are required when rules have scores (%s): without them a score acts on nothing", first)
	case t.set() && total == 0:
		v.add("thresholds", "no enforced rule has a score: the thresholds can never be reached")
	case t.set():
		for _, f := range []struct {
			key string
			n   int
		}{{"review", t.Review}, {"deny", t.Deny}} {
			if f.n > total {
				v.add("thresholds."+f.key, "%d can never be reached: the enforced rules' scores add up to %d", f.n, total)
			}
		}
	}
}

// band is the outcome the sale's score reaches under the thresholds.
func (t Thresholds) band(score int) Outcome {
	switch {
	case t.Deny > 0 && score >= t.Deny:
		return Deny
	case t.Review > 0 && score >= t.Review:
		return Review
	}
	return Allow
}
