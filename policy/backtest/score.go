package backtest

import "github.com/posguard/posguard/policy"

// riskLevel is the one seam between a decision and the report's threshold
// sweep: the level a sale reached, and whether it is a risk score (true)
// or, for a policy without thresholds, the rank of its outcome (0 allow,
// 1 review, 2 deny; false). The sweep then asks, for each threshold, which
// labelled sales at that level or above would have been stopped.
//
// With thresholds the level is the decision's score, raised to the band
// its outcome stands for when an enforced review or deny rule decided it
// whatever the score (a hard deny is stopped at every threshold up to the
// deny one).
func riskLevel(p *policy.Policy, d *policy.Decision) (level int, scored bool) {
	t := p.Thresholds
	if t == (policy.Thresholds{}) {
		return rank(d.Outcome), false
	}
	level = d.Score
	switch d.Outcome {
	case policy.Deny:
		level = max(level, t.Deny)
	case policy.Review:
		level = max(level, t.Review)
	}
	return level, true
}
