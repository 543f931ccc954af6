package backtest

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/reason"
)

// Sweep is what the policy would stop at each threshold of the risk level
// (see riskLevel), on the labelled sales: the trade between fraud stopped
// and honest customers touched that choosing a threshold makes.
type Sweep struct {
	// By is "score" when the decisions carry a risk score, "outcome" when
	// they do not: the levels are then 1 review and 2 deny, and the sweep
	// only says what stopping at review or at deny catches.
	By     string       `json:"by"`
	Points []SweepPoint `json:"points"`
}

// SweepPoint is one threshold: the labelled sales whose level is at least
// Threshold.
type SweepPoint struct {
	Threshold    int    `json:"threshold"`
	Name         string `json:"name"` // "review or deny", "deny", "score ≥ 40"
	FraudStopped Tally  `json:"fraudStopped"`
	LegitTouched Tally  `json:"legitTouched"`
}

// ChangedSale is one sale the policy decided otherwise than the baseline.
type ChangedSale struct {
	At       time.Time      `json:"at"`
	Store    string         `json:"store"`
	Register string         `json:"register"`
	SaleID   string         `json:"saleId"`
	Account  string         `json:"account"`
	Amount   int64          `json:"amount"`
	From     policy.Outcome `json:"from"`
	To       policy.Outcome `json:"to"`
	Label    string         `json:"label,omitempty"`
	// Rules are the ids of the policy's enforced rules that fired.
	Rules []string `json:"rules"`
	// Reasons are the fired rules' reasons as people read them, in the
	// report's language (policy/reason), one per rule in the decision's
	// order, shadow rules marked.
	Reasons []string `json:"reasons"`
}

// MaxChanged bounds the changed sales a report lists, and the held ones:
// the largest by amount (all are counted in Transitions and Outcomes).
const MaxChanged = 100

// detail collects, sale by sale, what the report needs beyond counts: the
// labels from the ground truth, the threshold sweep and the largest
// changed sales. Replay calls label before deciding a sale and decided
// after.
type detail struct {
	truth   *GroundTruth
	stats   TruthStats
	seen    map[string]struct{}
	levels  [][2]Tally // by level (≥ 0): fraud, legit
	scored  bool
	lang    string
	changed changedHeap
	held    changedHeap
}

func newDetail(truth *GroundTruth, lang string) *detail {
	if lang == "" {
		lang = reason.Japanese
	}
	d := &detail{truth: truth, lang: lang}
	if truth != nil {
		d.seen = map[string]struct{}{}
		d.stats = TruthStats{Accounts: truth.Len(), Fraud: truth.fraud, Legit: truth.legit}
	}
	return d
}

// label sets the sale's label from the ground truth, which decides for
// every account it lists; other sales keep the label of their event.
func (c *detail) label(s *Sale) {
	if c.truth == nil {
		return
	}
	acct := s.Request.Payment.Account
	l, listed := c.truth.Label(acct, s.Request.At)
	if !listed {
		return
	}
	c.seen[acct] = struct{}{}
	s.Label = l
	if l == "" {
		c.stats.BeforeAt++
	} else {
		c.stats.Sales++
	}
}

func (c *detail) decided(p *policy.Policy, s *Sale, d *policy.Decision, base policy.Outcome, amount int64) {
	if s.Label != "" {
		level, scored := riskLevel(p, d)
		c.scored = c.scored || scored
		level = max(level, 0)
		for len(c.levels) <= level {
			c.levels = append(c.levels, [2]Tally{})
		}
		t := &c.levels[level]
		if s.Label == "fraud" {
			t[0].add(amount)
		} else {
			t[1].add(amount)
		}
	}
	changed, held := base != d.Outcome, d.Outcome == policy.Review
	if !changed && !held || !fits(c.changed, changed, amount) && !fits(c.held, held, amount) {
		return
	}
	// Made only for a sale one of the lists keeps: the reasons are
	// rendered now, as the evaluator reuses the decision's memory.
	ch := ChangedSale{At: s.Request.At, Store: s.Request.Store, Register: s.Request.Register, SaleID: s.Request.SaleID,
		Account: s.Request.Payment.Account, Amount: amount, From: base, To: d.Outcome, Label: s.Label, Rules: []string{},
		Reasons: reason.Decision(c.lang, *d)}
	for _, f := range d.Rules {
		if f.Mode != policy.ModeShadow && !slices.Contains(ch.Rules, f.ID) {
			ch.Rules = append(ch.Rules, f.ID)
		}
	}
	if fits(c.changed, changed, amount) {
		keep(&c.changed, ch)
	}
	if fits(c.held, held, amount) {
		keep(&c.held, ch)
	}
}

// fits reports whether a sale of amount, if in, enters list h.
func fits(h changedHeap, in bool, amount int64) bool {
	return in && (len(h) < MaxChanged || amount > h[0].Amount)
}

// keep adds ch to h, dropping the smallest when h is full.
func keep(h *changedHeap, ch ChangedSale) {
	if len(*h) == MaxChanged {
		heap.Pop(h)
	}
	heap.Push(h, ch)
}

// merge adds o, another shard's part of the replay, to c.
func (c *detail) merge(o *detail) {
	c.stats.Sales += o.stats.Sales
	c.stats.BeforeAt += o.stats.BeforeAt
	for a := range o.seen {
		c.seen[a] = struct{}{}
	}
	c.scored = c.scored || o.scored
	for len(c.levels) < len(o.levels) {
		c.levels = append(c.levels, [2]Tally{})
	}
	for l, t := range o.levels {
		c.levels[l][0].merge(t[0])
		c.levels[l][1].merge(t[1])
	}
	// Keep the MaxChanged largest of both, earliest first among equal
	// amounts, as one sequential replay keeps them.
	for _, l := range []struct{ to, from *changedHeap }{{&c.changed, &o.changed}, {&c.held, &o.held}} {
		for _, ch := range *l.from {
			heap.Push(l.to, ch)
		}
		for len(*l.to) > MaxChanged {
			heap.Pop(l.to)
		}
	}
}

// largestFirst lists h by amount, largest first, then by time and sale.
func largestFirst(h changedHeap) []ChangedSale {
	out := slices.Clone([]ChangedSale(h))
	slices.SortFunc(out, func(a, b ChangedSale) int {
		if x := cmp.Compare(b.Amount, a.Amount); x != 0 {
			return x
		}
		if x := a.At.Compare(b.At); x != 0 {
			return x
		}
		return cmp.Compare(a.SaleID, b.SaleID)
	})
	if out == nil {
		out = []ChangedSale{}
	}
	return out
}

func (c *detail) finish(rep *Report) {
	if c.truth != nil {
		c.stats.Seen = len(c.seen)
		st := c.stats
		rep.GroundTruth = &st
	}
	rep.Changed, rep.Held, rep.Lang = largestFirst(c.changed), largestFirst(c.held), c.lang
	var levels []int // the levels some labelled sale reached
	for l, t := range c.levels {
		if t[0].Sales+t[1].Sales > 0 {
			levels = append(levels, l)
		}
	}
	if len(levels) == 0 {
		return
	}
	sw := &Sweep{By: "outcome", Points: []SweepPoint{}}
	if c.scored {
		sw.By = "score"
	}
	thresholds := []int{1, 2}
	if c.scored {
		thresholds = thresholds[:0]
		for _, l := range levels {
			if l > 0 {
				thresholds = append(thresholds, l)
			}
		}
	}
	// Cumulate from the top: a threshold stops every level at or above it.
	var fraud, legit Tally
	li := len(levels) - 1
	for i := len(thresholds) - 1; i >= 0; i-- {
		th := thresholds[i]
		for ; li >= 0 && levels[li] >= th; li-- {
			t := &c.levels[levels[li]]
			fraud.Sales += t[0].Sales
			fraud.Amount += t[0].Amount
			legit.Sales += t[1].Sales
			legit.Amount += t[1].Amount
		}
		sw.Points = append(sw.Points, SweepPoint{Threshold: th, Name: levelName(th, c.scored), FraudStopped: fraud, LegitTouched: legit})
	}
	slices.Reverse(sw.Points)
	rep.Sweep = sw
}

func levelName(level int, scored bool) string {
	switch {
	case scored:
		return fmt.Sprintf("score ≥ %d", level)
	case level == 2:
		return "deny"
	default:
		return "review or deny"
	}
}

// changedHeap keeps the largest changed sales: a min-heap on amount, so
// the smallest kept is dropped first. Of equal amounts the later sale
// goes first, as decided skips a newcomer equal to the smallest: sales
// arrive in time order, so the earliest are kept either way.
type changedHeap []ChangedSale

func (h changedHeap) Len() int { return len(h) }
func (h changedHeap) Less(i, j int) bool {
	if h[i].Amount != h[j].Amount {
		return h[i].Amount < h[j].Amount
	}
	return h[i].At.After(h[j].At)
}
func (h changedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *changedHeap) Push(x any)   { *h = append(*h, x.(ChangedSale)) }
func (h *changedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
