package policy

import (
	"time"

	"github.com/posguard/posguard/policy/sale"
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

// evaluation is the state of one Evaluate call. Rule kinds are called
// through the function Load stored on each Rule, and the compiler makes
// anything handed to a call it cannot see into escape to the heap; so the
// evaluation comes from a pool on the policy rather than the stack, and a
// warm pool decides a quiet sale without allocating. Its expression inputs
// (cel) keep their cart and maps from sale to sale.
type evaluation struct {
	p    *Policy
	req  Request
	hist History
	d    Decision

	cel      celVars
	celReady bool // cel is set up for this sale

	// fired, reasons and text are what the fired rules said, kept from
	// sale to sale: Evaluate hands the decision exact copies (finish), so
	// a firing sale allocates its rules, their reasons, their sentences
	// and its category names once each, not once per rule or per word.
	fired    []Fired
	spans    []firedSpan
	reasons  []sale.Reason
	text     []byte
	textFrom int // where the sentence being written starts in text
	// into, when set, is the Decider whose storage the decision gets, and
	// no sentence is written.
	into *Decider
	// bycat is the sale's lines added up per category, worked out once
	// (by the first rule that needs it) for every rule's sums.
	bycat      []catSum
	bycatReady bool
}

// catSum is the lines of one category added up: withUnits the units the
// catalog gives, without them 1 per item (as sums counts them).
type catSum struct {
	cat             string
	base, withUnits cartSums
}

// firedSpan is where a fired rule's sentence and reasons are in the
// evaluation's text and reasons.
type firedSpan struct{ text0, text1, why0, why1 int }

// fire records a fired rule whose sentence is what was written since the
// last one fired. Its score goes to the decision's score, or to the
// shadow score in shadow mode; its action, unless shadow, to the outcome
// (a score-only rule's action ranks as allow).
func (e *evaluation) fire(f Fired, why []sale.Reason) {
	sp := firedSpan{text0: e.textFrom, text1: len(e.text), why0: len(e.reasons)}
	e.reasons = append(e.reasons, why...)
	sp.why1 = len(e.reasons)
	e.textFrom = len(e.text)
	e.fired = append(e.fired, f)
	e.spans = append(e.spans, sp)
	if f.Mode == ModeShadow {
		e.d.ShadowScore += f.Score
		return
	}
	e.d.Score += f.Score
	e.raise(Outcome(f.Action))
}

func (e *evaluation) raise(o Outcome) {
	if rank(o) > rank(e.d.Outcome) {
		e.d.Outcome = o
	}
}

// fireRule fires a policy rule with the sentence written (sentence.go)
// and its reasons.
func (e *evaluation) fireRule(r *Rule, why ...sale.Reason) {
	e.fire(Fired{ID: r.ID, Action: r.Action, Mode: r.Mode, Score: r.Score}, why)
}

// builtin fires one of the rules the engine has of itself (token,
// cart:range, offline and failMode limits): always enforced, no score.
func (e *evaluation) builtin(id, action string, why ...sale.Reason) {
	e.fire(Fired{ID: id, Action: action, Mode: ModeEnforce}, why)
}

// finish gives the decision its fired rules, their reasons and sentences
// and the sale's category names, copied out of the evaluation's storage in
// one allocation each. Rules is never nil, so a decision where nothing
// fired encodes as "rules": [] (a zero-length slice allocates nothing).
func (e *evaluation) finish(names bool) {
	if e.into != nil {
		e.finishInto(e.into, names)
		return
	}
	if len(e.fired) == 0 {
		e.d.Rules = []Fired{}
		return
	}
	rules := make([]Fired, len(e.fired))
	var why []sale.Reason
	if len(e.reasons) > 0 {
		why = make([]sale.Reason, len(e.reasons))
		copy(why, e.reasons)
	}
	text := string(e.text)
	for i, sp := range e.spans {
		f := e.fired[i]
		f.Reason = text[sp.text0:sp.text1]
		if why != nil {
			f.Reasons = why[sp.why0:sp.why1:sp.why1]
		}
		rules[i] = f
	}
	e.d.Rules = rules
	if names {
		e.d.Categories = e.categoryNames()
	}
}

// Evaluate decides one sale. It is pure: time is req.At, state is hist. A
// sale where nothing fires allocates nothing in the built-in rule kinds;
// expr rules reuse pooled inputs and allocate only where CEL boxes values
// (integers of 256 and up, strings read from the sale). A nil policy is
// decided by DefaultFailMode; a nil hist is an empty history. Rules is
// never nil, so a decision where nothing fired encodes as "rules": [].
func Evaluate(p *Policy, req Request, hist History) Decision {
	return evaluate(p, req, hist, nil)
}

// A Decider decides sale after sale for a caller that is done with each
// decision before it asks for the next, as a backtest is: the decision's
// Rules, their Reasons and its Categories live in the Decider and are
// overwritten by its next call, and Fired.Reason, the English sentence
// for logs, is left empty (render Reasons with policy/reason where text is
// wanted). Everything else is what Evaluate decides, and a warm Decider
// decides a sale where rules fire without allocating (CEL's boxes aside).
// A Decider is not for concurrent use; its zero value is ready.
type Decider struct {
	rules   []Fired
	reasons []sale.Reason
	cats    []sale.Names
}

// Evaluate decides one sale as Evaluate does, into the Decider's storage.
func (dc *Decider) Evaluate(p *Policy, req Request, hist History) Decision {
	return evaluate(p, req, hist, dc)
}

func evaluate(p *Policy, req Request, hist History, into *Decider) Decision {
	if p == nil {
		return EvaluateFailMode(DefaultFailMode(), req)
	}
	if hist == nil {
		hist = emptyHistory{}
	}
	var e *evaluation
	if p.evals != nil {
		e, _ = p.evals.Get().(*evaluation)
	}
	if e == nil {
		e = &evaluation{}
	}
	e.p, e.req, e.hist, e.into = p, req, hist, into
	e.d = Decision{
		Outcome: Allow,
		Policy:  PolicyRef{Name: p.Metadata.Name, Version: p.Metadata.Version},
		Offline: req.Offline,
	}

	e.token(p.FailMode.InvalidToken, p.FailMode.UnknownToken)
	e.checkRange()
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.excused(&e.req) {
			continue
		}
		eval := r.eval
		if eval == nil {
			// A rule Load has not seen: a Policy built or extended by hand.
			eval = ruleKinds[r.Kind].eval
		}
		if eval != nil {
			eval(e, r)
		}
	}
	if req.Offline {
		e.offline()
	}
	if p.Thresholds.set() {
		e.raise(p.Thresholds.band(e.d.Score))
	}
	e.finish(true)
	d := e.d
	e.release()
	return d
}

// release hands the evaluation back to its policy's pool, keeping nothing
// of the sale (the decision belongs to the caller now) but the storage of
// the expression inputs.
func (e *evaluation) release() {
	pool := e.p.evals
	if e.celReady {
		e.cel.reset()
	}
	// Keep the storage, not the sale's strings.
	clear(e.bycat)
	clear(e.fired)
	clear(e.reasons)
	e.fired, e.spans, e.reasons, e.text, e.textFrom = e.fired[:0], e.spans[:0], e.reasons[:0], e.text[:0], 0
	e.p, e.req, e.hist, e.into, e.d, e.celReady, e.bycatReady = nil, Request{}, nil, nil, Decision{}, false, false
	if pool != nil {
		pool.Put(e)
	}
}

// finishInto is finish for a Decider: the decision gets the Decider's
// storage, overwritten, and no sentences.
func (e *evaluation) finishInto(dc *Decider, names bool) {
	dc.rules = append(dc.rules[:0], e.fired...)
	dc.reasons = append(dc.reasons[:0], e.reasons...)
	for i, sp := range e.spans {
		dc.rules[i].Reasons = dc.reasons[sp.why0:sp.why1:sp.why1]
	}
	if dc.rules == nil {
		dc.rules = []Fired{}
	}
	e.d.Rules = dc.rules
	if names && len(e.fired) > 0 {
		dc.cats = dc.cats[:0]
		for _, c := range e.byCategory() {
			dc.cats = append(dc.cats, e.p.CategoryNames(c.cat))
		}
		if len(dc.cats) > 0 {
			e.d.Categories = dc.cats
		}
	}
}

// categoryNames are the names of the sale's categories, each once, in
// the order their first lines come (byCategory's order).
func (e *evaluation) categoryNames() []sale.Names {
	cats := e.byCategory()
	if len(cats) == 0 {
		return nil
	}
	out := make([]sale.Names, len(cats))
	for i := range cats {
		out[i] = e.p.CategoryNames(cats[i].cat)
	}
	return out
}

// exprVars are the inputs of expr rules for this sale, set up when the
// first expr rule runs.
func (e *evaluation) exprVars() *celVars {
	if !e.celReady {
		e.cel.begin(e.p, &e.req, e.hist)
		e.celReady = true
	}
	return &e.cel
}

func (e *evaluation) token(invalid, unknown string) {
	pm := &e.req.Payment
	if pm.Invalid != "" {
		if invalid != string(Review) {
			invalid = string(Deny) // never allow an invalid token
		}
		e.w("token rejected: ")
		e.w(pm.Invalid)
		e.builtin(TokenRuleID, invalid, sale.Reason{Code: sale.CodeTokenInvalid, Text: pm.Invalid})
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
	e.w("token matched no known wallet (kind ")
	e.w(kind)
	e.w(")")
	e.builtin(TokenRuleID, unknown, sale.Reason{Code: sale.CodeTokenUnknown, Text: kind})
}

// lineInfo is the line's category, resolved from the catalog when the
// caller left it empty ("unknown" for an item the catalog does not know),
// and the sellable units of one of it. A listed JAN is read in place: this
// runs for every line of every sale, and Item's copy of the entry showed
// in the profile.
func (p *Policy) lineInfo(l *Line) (category string, units int) {
	category, units = l.Category, 1
	if i, ok := p.items[l.JAN]; ok {
		it := &p.Catalog.Items[i]
		units = it.Units
		if category == "" {
			category = it.Category
		}
	} else if len(p.ranges) > 0 {
		if it, ok := p.Item(l.JAN); ok {
			units = it.Units
			if category == "" {
				category = it.Category
			}
		}
	}
	if category == "" {
		category = "unknown"
	}
	return category, units
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
	for i := range e.byCategory() {
		c := &e.bycat[i]
		if !inCategories(cats, c.cat) {
			continue
		}
		t := &c.base
		if withUnits {
			t = &c.withUnits
		}
		// Saturating sums of non-negative parts: the same whatever the
		// grouping, so per category first changes nothing.
		amount, ok1 := addSat(s.amount, t.amount)
		qty, ok2 := addSat(int64(s.quantity), int64(t.quantity))
		un, ok3 := addSat(int64(s.units), int64(t.units))
		s.amount, s.quantity, s.units = amount, int(qty), int(un)
		s.matched = true
		s.overflow = s.overflow || t.overflow || !(ok1 && ok2 && ok3)
	}
	return s
}

// byCategory adds the sale's lines up per category, once per sale: each
// line's category and units are looked up in the catalog once, instead of
// once per rule that sums the cart.
func (e *evaluation) byCategory() []catSum {
	if e.bycatReady {
		return e.bycat
	}
	e.bycat = e.bycat[:0]
	for i := range e.req.Lines {
		l := &e.req.Lines[i]
		cat, units := e.p.lineInfo(l)
		k := 0
		for k < len(e.bycat) && e.bycat[k].cat != cat {
			k++
		}
		if k == len(e.bycat) {
			e.bycat = append(e.bycat, catSum{cat: cat})
		}
		c := &e.bycat[k]
		c.base.add(l, 1)
		c.withUnits.add(l, units)
	}
	e.bycatReady = true
	return e.bycat
}

// add adds one line of units per item to s, saturating.
func (s *cartSums) add(l *Line, units int) {
	s.matched = true
	if l.Quantity < 0 || l.UnitPrice < 0 || units < 0 {
		s.overflow = true // a negative line would lower the sums
		return
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

// applies gates the claim rules on the rule's categories, if it has any.
func (e *evaluation) applies(r *Rule) bool {
	if len(r.Categories) == 0 {
		return true
	}
	for i := range e.byCategory() {
		if inCategories(r.Categories, e.bycat[i].cat) {
			return true
		}
	}
	return false
}

// secs is a span in whole seconds, as reasons carry it.
func secs(d time.Duration) int64 { return int64(d / time.Second) }

// claimTooRecent fires r when a token claim's time (device bound,
// account created) is less than min before the sale. A claim the token
// does not make fires nothing; one after the sale is clock skew, age 0.
func (e *evaluation) claimTooRecent(r *Rule, since time.Time, min time.Duration, minText, what, code string) {
	if since.IsZero() || !e.applies(r) {
		return
	}
	age := e.req.At.Sub(since)
	if age < 0 {
		age = 0
	}
	if age < min {
		e.w(what)
		e.w(" ")
		e.wSpan(age)
		e.w(" before the sale < minimum ")
		e.w(minText)
		e.fireRule(r, sale.Reason{
			Code: code, Value: secs(age), Limit: secs(min), Unit: sale.UnitSeconds, Ago: secs(age), Category: r.names})
	}
}

func (e *evaluation) offline() {
	o := &e.p.Offline
	if o.MaxSaleAmount != nil {
		if s := e.sums(nil, false); s.amount > *o.MaxSaleAmount {
			e.w("offline: sale ")
			e.wYen(s.amount)
			e.w(" > limit ")
			e.wYen(*o.MaxSaleAmount)
			e.builtin("offline:sale", o.Action, sale.Reason{Code: sale.CodeOfflineSale, Value: s.amount, Limit: *o.MaxSaleAmount, Unit: sale.UnitYen})
		}
	}
	for i := range o.Categories {
		l := &o.Categories[i]
		s := e.sums([]string{l.Category}, false)
		var buf [2]sale.Reason
		why := buf[:0]
		if l.MaxQuantity != nil && s.quantity > *l.MaxQuantity {
			e.w("offline: ")
			e.w(e.p.Label(l.Category))
			e.w(" ")
			e.wInt(int64(s.quantity))
			e.w(" > limit ")
			e.wInt(int64(*l.MaxQuantity))
			why = append(why, sale.Reason{Code: sale.CodeOfflineQuantity, Value: int64(s.quantity), Limit: int64(*l.MaxQuantity),
				Unit: sale.UnitItems, Category: e.p.CategoryNames(l.Category)})
		}
		if l.MaxAmount != nil && s.amount > *l.MaxAmount {
			e.wNext()
			e.w("offline: ")
			e.w(e.p.Label(l.Category))
			e.w(" ")
			e.wYen(s.amount)
			e.w(" > limit ")
			e.wYen(*l.MaxAmount)
			why = append(why, sale.Reason{Code: sale.CodeOfflineAmount, Value: s.amount, Limit: *l.MaxAmount,
				Unit: sale.UnitYen, Category: e.p.CategoryNames(l.Category)})
		}
		if len(why) > 0 {
			var id string
			if i < len(e.p.offlineIDs) {
				id = e.p.offlineIDs[i] // built at load
			} else {
				id = "offline:" + l.Category
			}
			e.builtin(id, o.Action, why...)
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
				e.w("no valid policy: sale contains ")
				e.w(c)
				e.builtin("failmode:category", action, sale.Reason{Code: sale.CodeFailModeCategory, Category: sale.Names{ID: c, EN: c}})
				break
			}
		}
	}
	if fm.MaxSaleAmount != nil {
		if s := e.sums(nil, false); s.amount > *fm.MaxSaleAmount {
			e.w("no valid policy: sale ")
			e.wYen(s.amount)
			e.w(" > limit ")
			e.wYen(*fm.MaxSaleAmount)
			e.builtin("failmode:sale", action, sale.Reason{Code: sale.CodeFailModeSale, Value: s.amount, Limit: *fm.MaxSaleAmount, Unit: sale.UnitYen})
		}
	}
	e.finish(false)
	return e.d
}

type emptyHistory struct{}

func (emptyHistory) AccountSales(string, string, string, time.Time, []string) Totals  { return Totals{} }
func (emptyHistory) DistinctAccounts(string, string, time.Time, []string, string) int { return 0 }
func (emptyHistory) Denylisted(string) bool                                           { return false }
