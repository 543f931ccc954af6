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
	"runtime"
	"slices"
	"sync"
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
	// Lang is the language the listed sales' reasons are worded in
	// (policy/reason: "ja" or "en"); "" is Japanese, as the staff read
	// them.
	Lang string
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
	// Held lists the largest sales the policy holds for review, changed
	// or not (at most MaxChanged): what managers would be asked about.
	Held []ChangedSale `json:"held"`
	// Lang is the language of the listed sales' reasons.
	Lang string `json:"lang"`
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

// Run reads events from r and replays them as they are read (see stream):
// parsing is spread over the CPUs, and so is the replay, by store (every
// history lookup of a rule is within the sale's store, so stores replay
// independently). Memory is bounded by the pipeline's buffers and the
// sales the retention keeps, not by the input. Events must come in time
// order within each store (HQ's export is in time order); when they do
// not and r is an io.Seeker (a file), Run reads it again whole and sorts it
// (Read, then Replay), otherwise it fails with ErrOutOfOrder. Progress, if
// set, gets phase "read" with the lines read.
func Run(ctx context.Context, r io.Reader, opts Options) (*Report, error) {
	if opts.Policy == nil {
		return nil, errors.New("backtest: a policy is required")
	}
	rep, in, err := stream(ctx, r, opts)
	var disorder *outOfOrder
	if errors.As(err, &disorder) {
		seeker, ok := r.(io.Seeker)
		if !ok {
			return nil, fmt.Errorf("%w: %w; sort the events by time or give them as a file", ErrOutOfOrder, err)
		}
		if _, serr := seeker.Seek(0, io.SeekStart); serr != nil {
			return nil, fmt.Errorf("%w: %w; and rereading it failed: %w", ErrOutOfOrder, err, serr)
		}
		rep, in, err = sorted(ctx, r, opts)
	}
	if err != nil {
		return nil, err
	}
	rep.Input = in
	if in.Decisions == 0 {
		return rep, ErrNothingReplayed
	}
	return rep, nil
}

// sorted is the whole-input path: Read (which sorts), then Replay.
func sorted(ctx context.Context, r io.Reader, opts Options) (*Report, Input, error) {
	var progress func(int)
	if opts.Progress != nil {
		progress = func(n int) { opts.Progress("read", n, 0) }
	}
	sales, in, err := Read(ctx, r, progress)
	if err != nil {
		return nil, in, err
	}
	opts.Progress = nil // Replay's "replay" phase is for its own callers
	rep, err := Replay(ctx, sales, opts)
	return rep, in, err
}

// ErrOutOfOrder: the events of a store are not in time order and the input
// cannot be read again to sort it.
var ErrOutOfOrder = errors.New("events out of time order")

// progressEvery is how many sales Replay decides between Progress calls.
const progressEvery = 100_000

// Replay decides sales (in the order given; Read sorts them by time) with
// the policy and the baseline, each with its own rebuilt history, and
// compiles the report. Input is left empty for the caller. Stores are
// replayed in parallel (see Run).
func Replay(ctx context.Context, sales []Sale, opts Options) (*Report, error) {
	if opts.Policy == nil {
		return nil, errors.New("backtest: a policy is required")
	}
	every := opts.progressEvery
	if every <= 0 {
		every = progressEvery
	}
	rp := newReplayer(opts)
	const batch = 256
	for i := 0; i < len(sales); i += batch {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				rp.abort()
				return nil, fmt.Errorf("replay: %w", err)
			}
		}
		end := min(i+batch, len(sales))
		for j := i; j < end; j++ {
			if opts.Progress != nil && j > 0 && j%every == 0 {
				opts.Progress("replay", j, len(sales))
			}
			rp.add(&sales[j])
		}
	}
	return rp.finish(), nil
}

// replayer spreads sales over shards by store: each shard owns its
// stores' histories and keeps its own tallies, merged at the end. Sales of
// one store reach its shard in the order add was called.
type replayer struct {
	opts    Options
	shards  []*shard
	pending [][]*Sale // per shard, not yet sent
	wg      sync.WaitGroup
}

// shardBatch is how many sales are handed to a shard at once.
const shardBatch = 128

func newReplayer(opts Options) *replayer {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	var deny map[string]bool
	if len(opts.Denylist) > 0 {
		deny = make(map[string]bool, len(opts.Denylist))
		for _, a := range opts.Denylist {
			deny[a] = true
		}
	}
	n := runtime.GOMAXPROCS(0)
	rp := &replayer{opts: opts, shards: make([]*shard, n), pending: make([][]*Sale, n)}
	for i := range rp.shards {
		sh := &shard{opts: opts, deny: deny, stores: map[string]*storeHist{}, in: make(chan []*Sale, 4), acc: newAccum(opts.Policy),
			det: newDetail(opts.Truth, opts.Lang)}
		rp.shards[i] = sh
		rp.wg.Add(1)
		go func() {
			defer rp.wg.Done()
			for b := range sh.in {
				for _, s := range b {
					sh.decide(s)
				}
			}
		}()
	}
	return rp
}

// add hands s to its store's shard. s must stay unchanged until finish.
func (rp *replayer) add(s *Sale) {
	i := int(hashString(s.Request.Store) % uint64(len(rp.shards)))
	rp.pending[i] = append(rp.pending[i], s)
	if len(rp.pending[i]) == shardBatch {
		rp.shards[i].in <- rp.pending[i]
		rp.pending[i] = make([]*Sale, 0, shardBatch)
	}
}

func (rp *replayer) flush() {
	for i, b := range rp.pending {
		if len(b) > 0 {
			rp.shards[i].in <- b
			rp.pending[i] = nil
		}
	}
	for _, sh := range rp.shards {
		close(sh.in)
	}
	rp.wg.Wait()
}

// abort stops the shards without a report.
func (rp *replayer) abort() {
	rp.pending = make([][]*Sale, len(rp.shards))
	rp.flush()
}

// finish waits for the shards and merges their tallies into the report.
func (rp *replayer) finish() *Report {
	rp.flush()
	p := rp.opts.Policy
	rep := &Report{
		Policy:      policy.PolicyRef{Name: p.Metadata.Name, Version: p.Metadata.Version},
		Baseline:    BaselineRef{Kind: "recorded"},
		Transitions: []Transition{},
	}
	if b := rp.opts.Baseline; b != nil {
		rep.Baseline = BaselineRef{Kind: "policy", Name: b.Metadata.Name, Version: b.Metadata.Version}
	}
	total, det := newAccum(p), newDetail(rp.opts.Truth, rp.opts.Lang)
	for _, sh := range rp.shards {
		total.merge(&sh.acc)
		det.merge(sh.det)
	}
	total.report(rep)
	det.finish(rep)
	return rep
}

// hashString is FNV-1a: which shard a store goes to.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// storeHist is one store's rebuilt histories.
type storeHist struct {
	hist, base *replayHistory
}

// shard replays the sales of its stores.
type shard struct {
	opts   Options
	deny   map[string]bool
	stores map[string]*storeHist
	in     chan []*Sale
	acc    accum
	det    *detail // labels, threshold sweep, largest changed sales (detail.go)
	// dec and baseDec decide into storage reused from sale to sale: a
	// decision is tallied before the next is made, and the replay reads
	// no English sentences.
	dec, baseDec policy.Decider
}

func (sh *shard) decide(s *Sale) {
	st := sh.stores[s.Request.Store]
	if st == nil {
		st = &storeHist{hist: newSharedHistory(sh.opts.Retention, sh.deny)}
		if sh.opts.Baseline != nil {
			st.base = newSharedHistory(sh.opts.Retention, sh.deny)
		}
		sh.stores[s.Request.Store] = st
	}
	p := sh.opts.Policy
	sh.det.label(s)
	d := sh.dec.Evaluate(p, s.Request, st.hist)
	st.hist.add(p, &s.Request, d.Outcome)
	base := s.Recorded
	baseRules := s.RecordedRules
	if b := sh.opts.Baseline; b != nil {
		bd := sh.baseDec.Evaluate(b, s.Request, st.base)
		st.base.add(b, &s.Request, bd.Outcome)
		base = bd.Outcome
		baseRules = sh.acc.scratch[:0]
		for _, f := range bd.Rules {
			baseRules = append(baseRules, f.ID)
		}
		sh.acc.scratch = baseRules
	}
	sh.acc.add(s, d, base, baseRules)
	sh.det.decided(p, s, &d, base, s.Amount())
}

// accum is the tallies of a replay, or of a shard's part of it.
type accum struct {
	n           int
	first, last *Sale // by (time, line), as the sorted order has them
	outcomes    Outcomes
	baseOut     Outcomes
	unchanged   int
	trans       map[[2]policy.Outcome]*Transition
	rules       *ruleTable
	labels      Labels
	labelled    bool
	seen        []string // fired ids of this sale, to count a rule once per sale
	scratch     []string
}

func newAccum(p *policy.Policy) accum {
	return accum{trans: map[[2]policy.Outcome]*Transition{}, rules: newRuleTable(p)}
}

// before orders sales as Read's sort does: by time, ties by input line.
func before(a, b *Sale) bool {
	if c := a.Request.At.Compare(b.Request.At); c != 0 {
		return c < 0
	}
	return a.Line < b.Line
}

func (a *accum) add(s *Sale, d policy.Decision, base policy.Outcome, baseRules []string) {
	amount := s.Amount()
	a.n++
	if a.first == nil || before(s, a.first) {
		a.first = s
	}
	if a.last == nil || before(a.last, s) {
		a.last = s
	}
	a.outcomes.add(d.Outcome)
	a.baseOut.add(base)
	if base == d.Outcome {
		a.unchanged++
	} else {
		k := [2]policy.Outcome{base, d.Outcome}
		t := a.trans[k]
		if t == nil {
			t = &Transition{From: base, To: d.Outcome}
			a.trans[k] = t
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

	a.seen = a.seen[:0]
	for i, f := range d.Rules {
		if slices.Contains(a.seen, f.ID) {
			continue
		}
		a.seen = append(a.seen, f.ID)
		r := a.rules.get(f.ID, f.Action, f.Mode, metAt{s, 0, i})
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
	a.seen = a.seen[:0]
	for i, id := range baseRules {
		if slices.Contains(a.seen, id) {
			continue
		}
		a.seen = append(a.seen, id)
		a.rules.baseline(id, metAt{s, 1, i}).BaselineFires++
	}

	if s.Label != "" {
		a.labelled = true
		if s.Label == "fraud" {
			a.labels.Fraud.add(amount)
		} else {
			a.labels.Legit.add(amount)
		}
		a.labels.Policy.add(s.Label, d.Outcome, amount)
		a.labels.Baseline.add(s.Label, base, amount)
	}
}

func (t *Tally) merge(o Tally) { t.Sales += o.Sales; t.Amount += o.Amount }

func (o *Outcomes) merge(x Outcomes) { o.Allow += x.Allow; o.Review += x.Review; o.Deny += x.Deny }

func (s *Score) merge(x *Score) {
	s.FraudDenied.merge(x.FraudDenied)
	s.FraudReviewed.merge(x.FraudReviewed)
	s.FraudAllowed.merge(x.FraudAllowed)
	s.LegitDenied.merge(x.LegitDenied)
	s.LegitReviewed.merge(x.LegitReviewed)
}

// merge adds b's tallies to a.
func (a *accum) merge(b *accum) {
	a.n += b.n
	if b.first != nil && (a.first == nil || before(b.first, a.first)) {
		a.first = b.first
	}
	if b.last != nil && (a.last == nil || before(a.last, b.last)) {
		a.last = b.last
	}
	a.outcomes.merge(b.outcomes)
	a.baseOut.merge(b.baseOut)
	a.unchanged += b.unchanged
	for k, t := range b.trans {
		if mine := a.trans[k]; mine != nil {
			mine.Sales += t.Sales
			mine.Amount += t.Amount
			mine.Fraud += t.Fraud
			mine.Legit += t.Legit
		} else {
			c := *t
			a.trans[k] = &c
		}
	}
	a.rules.merge(b.rules)
	a.labelled = a.labelled || b.labelled
	a.labels.Fraud.merge(b.labels.Fraud)
	a.labels.Legit.merge(b.labels.Legit)
	a.labels.Policy.merge(&b.labels.Policy)
	a.labels.Baseline.merge(&b.labels.Baseline)
}

// report fills rep from the merged tallies.
func (a *accum) report(rep *Report) {
	if a.first != nil {
		rep.First, rep.Last = a.first.Request.At, a.last.Request.At
	}
	rep.Outcomes, rep.BaselineOutcomes, rep.Unchanged = a.outcomes, a.baseOut, a.unchanged
	for _, t := range a.trans {
		rep.Transitions = append(rep.Transitions, *t)
	}
	slices.SortFunc(rep.Transitions, func(a, b Transition) int {
		if c := rank(a.From) - rank(b.From); c != 0 {
			return c
		}
		return rank(a.To) - rank(b.To)
	})
	rep.Rules = a.rules.list()
	if a.labelled {
		labels := a.labels
		labels.Policy.finish(labels.Fraud.Sales)
		labels.Baseline.finish(labels.Fraud.Sales)
		for i := range rep.Rules {
			r := &rep.Rules[i]
			r.Precision = ratio(r.Fraud.Sales, r.Fraud.Sales+r.Legit.Sales)
			r.Recall = ratio(r.Fraud.Sales, labels.Fraud.Sales)
		}
		rep.Labels = &labels
	}
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
// then ids met while replaying in the order a sequential replay in time
// order meets them (each remembers where it was first met, so shards'
// tables merge into that order).
type ruleTable struct {
	byID  map[string]int
	stats []RuleStats
	extra []extraRule // built-in and baseline-only ids
}

// extraRule is a fired id that is no rule of the policy: met is where it
// was first met, fired where it first fired under the policy (which sets
// its action and mode).
type extraRule struct {
	stats      RuleStats
	met, fired metAt
}

// metAt is a place in a replay: a sale, then the policy's fired rules
// (phase 0) before the baseline's (phase 1), then the index among them.
type metAt struct {
	sale  *Sale
	phase int
	i     int
}

func (m metAt) before(o metAt) bool {
	switch {
	case o.sale == nil:
		return m.sale != nil
	case m.sale == nil:
		return false
	case m.sale != o.sale:
		return before(m.sale, o.sale)
	case m.phase != o.phase:
		return m.phase < o.phase
	}
	return m.i < o.i
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

func (t *ruleTable) get(id, action, mode string, at metAt) *RuleStats {
	r, x := t.lookup(id, at)
	if x != nil && x.fired.sale == nil {
		// First fire of a built-in rule: it says what it does.
		x.fired = at
		r.Action, r.Mode = action, mode
	}
	return r
}

func (t *ruleTable) baseline(id string, at metAt) *RuleStats {
	r, _ := t.lookup(id, at)
	return r
}

// lookup returns the stats of id, and its extraRule if it is not one of
// the policy's rules.
func (t *ruleTable) lookup(id string, at metAt) (*RuleStats, *extraRule) {
	if i, ok := t.byID[id]; ok {
		if i < len(t.stats) {
			return &t.stats[i], nil
		}
		x := &t.extra[i-len(t.stats)]
		return &x.stats, x
	}
	// Ids are assigned after the policy's rules; the policy's rule count
	// never changes, so an index >= len(stats) always points into extra.
	t.byID[id] = len(t.stats) + len(t.extra)
	t.extra = append(t.extra, extraRule{stats: RuleStats{ID: id, Kind: builtinKind(id)}, met: at})
	x := &t.extra[len(t.extra)-1]
	return &x.stats, x
}

// merge adds o's counts to t (both of the same policy).
func (t *ruleTable) merge(o *ruleTable) {
	for i := range o.stats {
		addStats(&t.stats[i], &o.stats[i])
	}
	for i := range o.extra {
		ox := &o.extra[i]
		_, x := t.lookup(ox.stats.ID, ox.met)
		if ox.met.before(x.met) {
			x.met = ox.met
		}
		if ox.fired.sale != nil && (x.fired.sale == nil || ox.fired.before(x.fired)) {
			x.fired = ox.fired
			x.stats.Action, x.stats.Mode = ox.stats.Action, ox.stats.Mode
		}
		addStats(&x.stats, &ox.stats)
	}
}

// addStats adds o's counts to r.
func addStats(r, o *RuleStats) {
	r.Enforced += o.Enforced
	r.Shadow += o.Shadow
	r.BaselineFires += o.BaselineFires
	r.Outcomes.merge(o.Outcomes)
	r.Fraud.merge(o.Fraud)
	r.Legit.merge(o.Legit)
}

func (t *ruleTable) list() []RuleStats {
	out := slices.Clone(t.stats)
	extra := slices.Clone(t.extra)
	slices.SortStableFunc(extra, func(a, b extraRule) int {
		switch {
		case a.met.before(b.met):
			return -1
		case b.met.before(a.met):
			return 1
		}
		return 0
	})
	for _, x := range extra {
		out = append(out, x.stats)
	}
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
	pruned     time.Time     // newest at the last prune
	lines      []policy.Line // scratch for lines with their category resolved
	deny       map[string]bool
}

func newHistory(retention time.Duration, denylist []string) *replayHistory {
	return &replayHistory{
		MemoryHistory: policy.NewMemoryHistory(nil, denylist),
		retention:     retention,
		pruneEvery:    1 << 16,
	}
}

// newSharedHistory is newHistory with a denylist shared by every store's
// history (a chain's denylist is large; a store's history is not).
func newSharedHistory(retention time.Duration, deny map[string]bool) *replayHistory {
	h := newHistory(retention, nil)
	h.deny = deny
	return h
}

// Denylisted implements policy.History.
func (h *replayHistory) Denylisted(account string) bool {
	if h.deny != nil {
		return h.deny[account]
	}
	return h.MemoryHistory.Denylisted(account)
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
	// Also every quarter of the retention in sale time, so a store with
	// few sales forgets too (the chain's history is one per store). When
	// it prunes changes no decision: a rule window within the retention
	// never reaches back past what a prune keeps.
	if h.added%h.pruneEvery == 0 || h.newest.Sub(h.pruned) >= h.retention/4 {
		h.Prune(h.newest.Add(-h.retention))
		h.pruned = h.newest
	}
}
