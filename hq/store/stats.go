package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy/sale"
)

// Stats is the hourly rollup the console's charts read. It is kept at
// ingest, in the transaction that stores each event and only when the
// event is new, so a re-delivered event is never counted twice and no
// chart scans the events.
type Stats interface {
	// HourlyStats lists the hours in q's range (by the events' own time,
	// UTC hours), per store, ordered by hour then store.
	HourlyStats(ctx context.Context, q StatsQuery) ([]HourStats, error)
	// RuleStats lists the rules fired in q's range, most fired first
	// (enforced fires, then shadow fires, then rule id), at most q.Limit.
	RuleStats(ctx context.Context, q StatsQuery) ([]RuleStats, error)
}

// StatsQuery selects hours: those at or after Since's hour and before
// Until (zero: no bound), of Store when set.
type StatsQuery struct {
	Since, Until time.Time
	Store        string
	Limit        int // RuleStats: 0 means DefaultRuleLimit; HourlyStats: 0 means MaxStatsRows
	// Top, for HourlyStats, keeps the Top stores with the most denies in
	// the range (then decisions, then name) and sums all the others under
	// store OtherStores, so that a chart of a thousand stores gets at
	// most Top+1 rows an hour and still the fleet's totals.
	Top int
}

// OtherStores is the store of HourlyStats' rows that sum the stores beyond
// StatsQuery.Top.
const OtherStores = "*"

// DefaultRuleLimit is how many rules RuleStats lists when asked for no
// number; MaxStatsRows bounds any stats answer.
const (
	DefaultRuleLimit = 10
	MaxStatsRows     = 50_000
)

func (q StatsQuery) limit(def int) int {
	if q.Limit <= 0 {
		return def
	}
	return min(q.Limit, MaxStatsRows)
}

// HourStats is one store's hour of decisions.
type HourStats struct {
	Hour       time.Time `json:"hour"`
	Store      string    `json:"store"`
	Decisions  int64     `json:"decisions"`
	Reviews    int64     `json:"reviews"`
	Denies     int64     `json:"denies"`
	YenRefused int64     `json:"yenRefused"` // the carts of the denied sales
}

// RuleStats is how often one rule fired: a policy rule in decisions, or a
// chain rule at HQ.
type RuleStats struct {
	Rule   string `json:"rule"`
	Fired  int64  `json:"fired"`  // enforced
	Shadow int64  `json:"shadow"` // in shadow mode: reported, not acted on
}

// hourOf is the rollup's hour of t: UTC, truncated.
func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

type hourKey struct {
	hour  int64 // unix seconds
	store string
}

type ruleKey struct {
	hour int64
	rule string
}

// rollup is what a batch of new events adds to the stats.
type rollup struct {
	hours map[hourKey]*HourStats
	rules map[ruleKey]*RuleStats
}

func newRollup() *rollup {
	return &rollup{hours: map[hourKey]*HourStats{}, rules: map[ruleKey]*RuleStats{}}
}

// add counts ev: a decision in its store's hour, with its fired rules; a
// chain alert's rule. Other events count nothing.
func (r *rollup) add(ev event.Event) {
	h := hourOf(ev.At)
	switch {
	case ev.Type == event.Decision && ev.Decision != nil:
		k := hourKey{h.Unix(), ev.Store}
		s := r.hours[k]
		if s == nil {
			s = &HourStats{Hour: h, Store: ev.Store}
			r.hours[k] = s
		}
		s.Decisions++
		switch ev.Decision.Outcome {
		case sale.Review:
			s.Reviews++
		case sale.Deny:
			s.Denies++
			if ev.Request != nil {
				s.YenRefused += CartAmount(ev.Request.Lines)
			}
		}
		for _, f := range ev.Decision.Rules {
			r.rule(h, f.ID, f.Mode)
		}
	case ev.Type == event.Alert && ev.Chain != nil:
		r.rule(h, ev.Chain.Rule, ev.Chain.Mode)
	}
}

func (r *rollup) rule(h time.Time, id, mode string) {
	k := ruleKey{h.Unix(), id}
	s := r.rules[k]
	if s == nil {
		s = &RuleStats{Rule: id}
		r.rules[k] = s
	}
	if mode == "shadow" {
		s.Shadow++
	} else {
		s.Fired++
	}
}

func (r *rollup) empty() bool { return len(r.hours) == 0 && len(r.rules) == 0 }

// sortedHours and sortedRules list the rollup in key order: PostgreSQL
// takes the rows' locks in this order, so two HQ instances storing at once
// never deadlock on them.
func (r *rollup) sortedHours() []HourStats {
	out := make([]HourStats, 0, len(r.hours))
	for _, s := range r.hours {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b HourStats) int {
		return cmp.Or(a.Hour.Compare(b.Hour), cmp.Compare(a.Store, b.Store))
	})
	return out
}

// hourRule is one rule's count in one hour.
type hourRule struct {
	Hour time.Time
	RuleStats
}

func (r *rollup) sortedRules() []hourRule {
	out := make([]hourRule, 0, len(r.rules))
	for k, s := range r.rules {
		out = append(out, hourRule{time.Unix(k.hour, 0).UTC(), *s})
	}
	slices.SortFunc(out, func(a, b hourRule) int {
		return cmp.Or(a.Hour.Compare(b.Hour), cmp.Compare(a.Rule, b.Rule))
	})
	return out
}

// CartAmount is what the lines cost, in yen.
func CartAmount(lines []sale.Line) int64 {
	var n int64
	for _, l := range lines {
		n += int64(l.Quantity) * l.UnitPrice
	}
	return n
}

// topRules orders rule counts summed over hours and keeps the first limit.
func topRules(sum map[string]*RuleStats, limit int) []RuleStats {
	out := make([]RuleStats, 0, len(sum))
	for _, s := range sum {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b RuleStats) int {
		return cmp.Or(cmp.Compare(b.Fired, a.Fired), cmp.Compare(b.Shadow, a.Shadow), cmp.Compare(a.Rule, b.Rule))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// check refuses a range that ends before it starts.
func (q StatsQuery) check() error {
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return fmt.Errorf("stats: until %s is not after since %s", q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339))
	}
	return nil
}

// topStores is the names of the q.Top stores of rows with the most denies,
// then decisions, then by name.
func topStores(rows []HourStats, n int) map[string]bool {
	sum := map[string]*HourStats{}
	for _, r := range rows {
		t := sum[r.Store]
		if t == nil {
			t = &HourStats{Store: r.Store}
			sum[r.Store] = t
		}
		t.Denies += r.Denies
		t.Decisions += r.Decisions
	}
	all := make([]*HourStats, 0, len(sum))
	for _, t := range sum {
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b *HourStats) int {
		return cmp.Or(cmp.Compare(b.Denies, a.Denies), cmp.Compare(b.Decisions, a.Decisions), cmp.Compare(a.Store, b.Store))
	})
	top := map[string]bool{}
	for _, t := range all[:min(n, len(all))] {
		top[t.Store] = true
	}
	return top
}

// foldOthers sums the rows of stores not in top into one row an hour
// under OtherStores; rows are in (hour, store) order and stay so.
func foldOthers(rows []HourStats, top map[string]bool) []HourStats {
	var out []HourStats
	var other *HourStats
	flush := func() {
		if other != nil {
			out = append(out, *other)
			other = nil
		}
	}
	for _, r := range rows {
		if other != nil && !r.Hour.Equal(other.Hour) {
			flush()
		}
		if top[r.Store] {
			out = append(out, r)
			continue
		}
		if other == nil {
			other = &HourStats{Hour: r.Hour, Store: OtherStores}
		}
		other.Decisions += r.Decisions
		other.Reviews += r.Reviews
		other.Denies += r.Denies
		other.YenRefused += r.YenRefused
	}
	flush()
	// "*" sorts before store names: put each hour's others row first, as
	// PostgreSQL orders them.
	slices.SortStableFunc(out, func(a, b HourStats) int {
		return cmp.Or(a.Hour.Compare(b.Hour), cmp.Compare(a.Store, b.Store))
	})
	return out
}
