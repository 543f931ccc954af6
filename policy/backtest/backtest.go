// Package backtest replays recorded sale decisions through a policy, so HQ
// fraud staff can see what a new or changed rule would have done before it
// reaches a register: how often each rule fires, which decisions change
// against a baseline, and, on labelled events, how much fraud each rule
// catches and how many honest customers it touches.
//
// The input is the events JSONL the agents send and HQ exports (one
// agent/event.Event per line). Sales are replayed in time order and the
// register history is rebuilt as they go (see replayHistory for the rules), so
// velocity and distinct-account rules see what they would have seen live.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/posguard/posguard/policy"
)

// DefaultRetention is how long the replay history remembers a sale, the
// agent's default retention (agent/state Options.Retention).
const DefaultRetention = 7 * 24 * time.Hour

// ErrNothingReplayed is returned with the report when the input held no
// usable decision event.
var ErrNothingReplayed = errors.New("no decision event could be replayed")

// Options configure a replay.
type Options struct {
	// Policy is the policy under test (required).
	Policy *policy.Policy
	// Baseline, when set, is replayed alongside with its own history and
	// the decisions are compared with it; when nil they are compared with
	// the decisions recorded in the events.
	Baseline *policy.Policy
	// Denylist is the accounts on the HQ denylist during the replay.
	Denylist []string
	// Truth, when set, labels the sales of the accounts it lists (their
	// events' own labels are ignored); other sales keep their event's
	// label. Replay writes the labels into the sales it is given. See
	// GroundTruth.Label.
	Truth *GroundTruth
	// Retention is how long a sale stays in the replay history
	// (DefaultRetention when zero).
	Retention time.Duration
	// Progress, when set, is called now and then with the phase ("read",
	// "replay"), the work done and, for replay, the total.
	Progress func(phase string, done, total int)

	progressEvery int // replay progress interval; tests lower it
}

// Report is the result of a replay. Its JSON is `policy test --json`.
type Report struct {
	Policy   policy.PolicyRef `json:"policy"`
	Baseline BaselineRef      `json:"baseline"`
	Input    Input            `json:"input"`
	// First and Last are the request times of the first and last sale.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Outcomes are the decisions of the policy under test, Baseline those
	// of the baseline.
	Outcomes         Outcomes `json:"outcomes"`
	BaselineOutcomes Outcomes `json:"baselineOutcomes"`
	// Unchanged counts sales decided the same way as by the baseline;
	// Transitions lists the others by (from, to).
	Unchanged   int          `json:"unchanged"`
	Transitions []Transition `json:"transitions"`
	// Rules has one entry per rule of the policy, in policy order, then
	// the built-in rules (token, offline:*) that fired, then rules that
	// fired only in the baseline.
	Rules []RuleStats `json:"rules"`
	// Labels scores both sides on labelled events; nil when none is.
	Labels *Labels `json:"labels,omitempty"`
	// GroundTruth says how the labels file (Options.Truth) met the
	// events; nil without one.
	GroundTruth *TruthStats `json:"groundTruth,omitempty"`
	// Sweep is what each threshold would stop among the labelled sales;
	// nil when none is labelled.
	Sweep *Sweep `json:"sweep,omitempty"`
	// Changed lists the largest changed decisions (at most MaxChanged).
	Changed []ChangedSale `json:"changed"`
}

// BaselineRef names what the decisions are compared with.
type BaselineRef struct {
	// Kind is "policy" (a --baseline file) or "recorded" (the decisions
	// in the events).
	Kind    string `json:"kind"`
	Name    string `json:"name,omitempty"`
	Version int64  `json:"version,omitempty"`
}

func (b BaselineRef) String() string {
	if b.Kind == "recorded" {
		return "recorded decisions"
	}
	return fmt.Sprintf("%s v%d", b.Name, b.Version)
}

// Outcomes counts decisions by outcome.
type Outcomes struct {
	Allow  int `json:"allow"`
	Review int `json:"review"`
	Deny   int `json:"deny"`
}

func (o *Outcomes) add(x policy.Outcome) {
	switch x {
	case policy.Deny:
		o.Deny++
	case policy.Review:
		o.Review++
	default:
		o.Allow++
	}
}

// Transition is how many sales moved from one outcome under the baseline
// to another under the policy, their amount, and their labels.
type Transition struct {
	From   policy.Outcome `json:"from"`
	To     policy.Outcome `json:"to"`
	Sales  int            `json:"sales"`
	Amount int64          `json:"amount"`
	Fraud  int            `json:"fraud"`
	Legit  int            `json:"legit"`
}

// Tally is a number of sales and their amount in yen.
type Tally struct {
	Sales  int   `json:"sales"`
	Amount int64 `json:"amount"`
}

func (t *Tally) add(amount int64) {
	t.Sales++
	t.Amount += amount
}

// RuleStats is what one rule did over the replay.
type RuleStats struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Action string `json:"action"`
	Mode   string `json:"mode"`
	// Enforced and Shadow count the sales the rule fired on, by the mode
	// it fired in.
	Enforced int `json:"enforced"`
	Shadow   int `json:"shadow"`
	// BaselineFires counts the sales it fired on under the baseline (a
	// rule of the same id).
	BaselineFires int `json:"baselineFires"`
	// Outcomes are the final decisions of the sales it fired on.
	Outcomes Outcomes `json:"outcomes"`
	// Fraud and Legit are the labelled sales it fired on.
	Fraud Tally `json:"fraud"`
	Legit Tally `json:"legit"`
	// Precision is Fraud / (Fraud + Legit) sales; Recall is Fraud / all
	// fraud sales. Nil when undefined (no labelled fire, no fraud).
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
}

// Fires is every sale the rule fired on.
func (r *RuleStats) Fires() int { return r.Enforced + r.Shadow }

// Labels compares the policy and the baseline on labelled sales.
type Labels struct {
	Fraud    Tally `json:"fraud"`
	Legit    Tally `json:"legit"`
	Policy   Score `json:"policy"`
	Baseline Score `json:"baseline"`
}

// Score is one side's decisions on the labelled sales. A review counts as
// caught: a clerk looks at the sale before it goes through.
type Score struct {
	FraudDenied   Tally `json:"fraudDenied"`
	FraudReviewed Tally `json:"fraudReviewed"`
	FraudAllowed  Tally `json:"fraudAllowed"`
	LegitDenied   Tally `json:"legitDenied"`
	LegitReviewed Tally `json:"legitReviewed"`
	// Precision is caught fraud / all sales held (reviewed or denied) among
	// the labelled ones; Recall is caught fraud / all fraud.
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
}

func (s *Score) add(label string, o policy.Outcome, amount int64) {
	switch {
	case label == "fraud" && o == policy.Deny:
		s.FraudDenied.add(amount)
	case label == "fraud" && o == policy.Review:
		s.FraudReviewed.add(amount)
	case label == "fraud":
		s.FraudAllowed.add(amount)
	case label == "legit" && o == policy.Deny:
		s.LegitDenied.add(amount)
	case label == "legit" && o == policy.Review:
		s.LegitReviewed.add(amount)
	}
}

func (s *Score) finish(fraud int) {
	caught := s.FraudDenied.Sales + s.FraudReviewed.Sales
	s.Precision = ratio(caught, caught+s.LegitDenied.Sales+s.LegitReviewed.Sales)
	s.Recall = ratio(caught, fraud)
}

// ratio is a/b rounded to 4 places, nil when b is 0, so the JSON is stable
// and never holds NaN.
func ratio(a, b int) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(int64(float64(a)/float64(b)*10000+0.5)) / 10000
	return &v
}

// Run reads events from r and replays them: Read, then Replay.
func Run(ctx context.Context, r io.Reader, opts Options) (*Report, error) {
	if opts.Policy == nil {
		return nil, errors.New("backtest: a policy is required")
	}
	var progress func(int)
	if opts.Progress != nil {
		progress = func(n int) { opts.Progress("read", n, 0) }
	}
	sales, in, err := Read(ctx, r, progress)
	if err != nil {
		return nil, err
	}
	rep, err := Replay(ctx, sales, opts)
	if err != nil {
		return nil, err
	}
	rep.Input = in
	if len(sales) == 0 {
		return rep, ErrNothingReplayed
	}
	return rep, nil
}

// progressEvery is how many sales Replay decides between Progress calls.
const progressEvery = 100_000

// Replay decides sales (in the order given; Read sorts them by time) with
// the policy and the baseline, each with its own rebuilt history, and
// compiles the report. Input is left empty for the caller.
func Replay(ctx context.Context, sales []Sale, opts Options) (*Report, error) {
	p := opts.Policy
	if p == nil {
		return nil, errors.New("backtest: a policy is required")
	}
	ret := opts.Retention
	if ret <= 0 {
		ret = DefaultRetention
	}
	rep := &Report{
		Policy:      policy.PolicyRef{Name: p.Metadata.Name, Version: p.Metadata.Version},
		Baseline:    BaselineRef{Kind: "recorded"},
		Transitions: []Transition{},
	}
	hist := newHistory(ret, opts.Denylist)
	var baseHist *replayHistory
	if b := opts.Baseline; b != nil {
		rep.Baseline = BaselineRef{Kind: "policy", Name: b.Metadata.Name, Version: b.Metadata.Version}
		baseHist = newHistory(ret, opts.Denylist)
	}
	every := opts.progressEvery
	if every <= 0 {
		every = progressEvery
	}
	rules := newRuleTable(p)
	trans := map[[2]policy.Outcome]*Transition{}
	var labels Labels
	labelled := false
	var seen []string // fired ids of this sale, to count a rule once per sale
	det := newDetail(opts.Truth)

	for i := range sales {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("replay: %w", err)
			}
		}
		if opts.Progress != nil && i > 0 && i%every == 0 {
			opts.Progress("replay", i, len(sales))
		}
		s := &sales[i]
		det.label(s)
		amount := s.Amount()
		if i == 0 {
			rep.First = s.Request.At
		}
		rep.Last = s.Request.At

		d := policy.Evaluate(p, s.Request, hist.MemoryHistory)
		hist.add(p, &s.Request, d.Outcome)
		base := s.Recorded
		baseRules := s.RecordedRules
		if opts.Baseline != nil {
			bd := policy.Evaluate(opts.Baseline, s.Request, baseHist.MemoryHistory)
			baseHist.add(opts.Baseline, &s.Request, bd.Outcome)
			base = bd.Outcome
			baseRules = baseRules[:0:0]
			for _, f := range bd.Rules {
				baseRules = append(baseRules, f.ID)
			}
		}
		det.decided(p, s, &d, base, amount)
		rep.Outcomes.add(d.Outcome)
		rep.BaselineOutcomes.add(base)
		if base == d.Outcome {
			rep.Unchanged++
		} else {
			k := [2]policy.Outcome{base, d.Outcome}
			t := trans[k]
			if t == nil {
				t = &Transition{From: base, To: d.Outcome}
				trans[k] = t
			}
			t.Sales++
			t.Amount += amount
			switch s.Label {
			case "fraud":
				t.Fraud++
			case "legit":
				t.Legit++
			}
		}

		seen = seen[:0]
		for _, f := range d.Rules {
			if slices.Contains(seen, f.ID) {
				continue
			}
			seen = append(seen, f.ID)
			r := rules.get(f.ID, f.Action, f.Mode)
			if f.Mode == policy.ModeShadow {
				r.Shadow++
			} else {
				r.Enforced++
			}
			r.Outcomes.add(d.Outcome)
			switch s.Label {
			case "fraud":
				r.Fraud.add(amount)
			case "legit":
				r.Legit.add(amount)
			}
		}
		seen = seen[:0]
		for _, id := range baseRules {
			if slices.Contains(seen, id) {
				continue
			}
			seen = append(seen, id)
			rules.baseline(id).BaselineFires++
		}

		if s.Label != "" {
			labelled = true
			if s.Label == "fraud" {
				labels.Fraud.add(amount)
			} else {
				labels.Legit.add(amount)
			}
			labels.Policy.add(s.Label, d.Outcome, amount)
			labels.Baseline.add(s.Label, base, amount)
		}
	}

	for _, t := range trans {
		rep.Transitions = append(rep.Transitions, *t)
	}
	slices.SortFunc(rep.Transitions, func(a, b Transition) int {
		if c := rank(a.From) - rank(b.From); c != 0 {
			return c
		}
		return rank(a.To) - rank(b.To)
	})
	rep.Rules = rules.list()
	det.finish(rep)
	if labelled {
		labels.Policy.finish(labels.Fraud.Sales)
		labels.Baseline.finish(labels.Fraud.Sales)
		for i := range rep.Rules {
			r := &rep.Rules[i]
			r.Precision = ratio(r.Fraud.Sales, r.Fraud.Sales+r.Legit.Sales)
			r.Recall = ratio(r.Fraud.Sales, labels.Fraud.Sales)
		}
		rep.Labels = &labels
	}
	return rep, nil
}

func rank(o policy.Outcome) int {
	switch o {
	case policy.Deny:
		return 2
	case policy.Review:
		return 1
	}
	return 0
}

// ruleTable collects RuleStats by id: the policy's rules first, in order,
// then ids met while replaying in the order met.
type ruleTable struct {
	byID  map[string]int
	stats []RuleStats
	extra []RuleStats // built-in and baseline-only ids
}

func newRuleTable(p *policy.Policy) *ruleTable {
	t := &ruleTable{byID: map[string]int{}}
	for _, r := range p.Rules {
		mode := r.Mode
		if mode == "" {
			mode = policy.ModeEnforce
		}
		t.byID[r.ID] = len(t.stats)
		t.stats = append(t.stats, RuleStats{ID: r.ID, Kind: r.Kind, Action: r.Action, Mode: mode})
	}
	return t
}

// builtinKind names the kind of a fired id that is no rule of the policy.
func builtinKind(id string) string {
	switch {
	case id == policy.TokenRuleID:
		return "token"
	case len(id) > 8 && id[:8] == "offline:":
		return "offline"
	}
	return "baseline-only"
}

func (t *ruleTable) get(id, action, mode string) *RuleStats {
	r := t.lookup(id)
	if r.Action == "" {
		// First fire of a built-in rule: it says what it does.
		r.Action, r.Mode = action, mode
	}
	return r
}

func (t *ruleTable) baseline(id string) *RuleStats { return t.lookup(id) }

func (t *ruleTable) lookup(id string) *RuleStats {
	if i, ok := t.byID[id]; ok {
		if i < len(t.stats) {
			return &t.stats[i]
		}
		return &t.extra[i-len(t.stats)]
	}
	// Ids are assigned after the policy's rules; the policy's rule count
	// never changes, so an index >= len(stats) always points into extra.
	t.byID[id] = len(t.stats) + len(t.extra)
	t.extra = append(t.extra, RuleStats{ID: id, Kind: builtinKind(id)})
	return &t.extra[len(t.extra)-1]
}

func (t *ruleTable) list() []RuleStats {
	out := append(slices.Clone(t.stats), t.extra...)
	if out == nil {
		out = []RuleStats{}
	}
	return out
}

// replayHistory is the register memory a replay rebuilds as it goes, a
// policy.MemoryHistory fed by agent/state's rules so a backtest sees what a
// register would have seen:
//   - every decided sale with an account is recorded, after its decision;
//   - a denied sale is recorded as a denied attempt (policy.PastSale.Denied):
//     it adds nothing to the account's sales, amount or quantity
//     (account_velocity) but still counts among the distinct accounts seen
//     at the register and the store (register_accounts: a crew trying
//     account after account is exactly what that rule is for);
//   - each sale keeps its store and register, so a store-scoped rule sees
//     the store's every till, as a register does once its peers' sales
//     reach it, and no rule sees another store;
//   - sales older than the retention are forgotten, as the agent prunes.
//
// Sales arrive in time order (Read sorts them), so each add is an append.
type replayHistory struct {
	*policy.MemoryHistory
	retention  time.Duration
	added      int
	pruneEvery int
	newest     time.Time
	lines      []policy.Line // scratch for lines with their category resolved
}

func newHistory(retention time.Duration, denylist []string) *replayHistory {
	return &replayHistory{
		MemoryHistory: policy.NewMemoryHistory(nil, denylist),
		retention:     retention,
		pruneEvery:    1 << 16,
	}
}

// add records a decided sale. Categories left empty in the request are
// resolved from the policy catalog, as Evaluate does for the current sale
// (MemoryHistory itself would count them as "unknown").
func (h *replayHistory) add(p *policy.Policy, req *policy.Request, outcome policy.Outcome) {
	if req.Payment.Account == "" {
		return // agent/state keeps no history for a sale without an account
	}
	lines := req.Lines
	for i := range lines {
		if lines[i].Category != "" {
			continue
		}
		// Copy into the scratch buffer: Add does not keep the lines.
		h.lines = append(h.lines[:0], lines...)
		for j := i; j < len(h.lines); j++ {
			l := &h.lines[j]
			if l.Category != "" {
				continue
			}
			l.Category = "unknown"
			if it, ok := p.Item(l.JAN); ok {
				l.Category = it.Category
			}
		}
		lines = h.lines
		break
	}
	h.MemoryHistory.Add(policy.PastSale{At: req.At, Account: req.Payment.Account, Store: req.Store, Register: req.Register,
		Lines: lines, Denied: outcome == policy.Deny})
	if req.At.After(h.newest) {
		h.newest = req.At
	}
	h.added++
	if h.added%h.pruneEvery == 0 {
		h.Prune(h.newest.Add(-h.retention))
	}
}
