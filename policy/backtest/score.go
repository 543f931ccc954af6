package backtest

import "github.com/posguard/posguard/policy"

// riskLevel is the one seam between a decision and the report's threshold
// sweep: the level a sale reached, and whether it is a risk score (true)
// or, for a policy without scores, the rank of its outcome (0 allow,
// 1 review, 2 deny; false). The sweep then asks, for each threshold, which
// labelled sales at that level or above would have been stopped.
//
// Decisions carry no score yet. When policy.Decision gains its risk score
// (rules' `score`, the policy's `thresholds`), return it here for a policy
// that has thresholds — `return d.Score, len(p.Thresholds) > 0`, in the
// names the score change chooses — and the sweep, its JSON and the HTML
// report's chart switch to score thresholds with no other change.
func riskLevel(p *policy.Policy, d *policy.Decision) (level int, scored bool) {
	_ = p
	return rank(d.Outcome), false
}
