package hq

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/chain"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/wire"
)

// ChainConfig turns on HQ's chain rules (hq/chain).
type ChainConfig struct {
	Rules *chain.Document // nil: no chain rules
	// Cases opens or extends a case for the case action; nil: HQ's own
	// cases (hq/cases).
	Cases chain.CaseOpener
	// ExpireEvery is how often expired automatic denylist entries are
	// removed and old observations pruned; default one minute.
	ExpireEvery time.Duration
}

// firingQueue bounds the firings waiting for their actions; the ingest
// waits when it is full rather than lose one.
const firingQueue = 10_000

// chainRunner evaluates the chain rules on stored events and carries out
// what fires, off the ingest goroutine.
type chainRunner struct {
	engine  *chain.Engine
	firings chan chain.Firing
	fires   *prometheus.CounterVec
	errors  prometheus.Counter
}

func (s *Service) newChain() error {
	c := s.cfg.Chain
	if c.ExpireEvery <= 0 {
		c.ExpireEvery = time.Minute
		s.cfg.Chain.ExpireEvery = c.ExpireEvery
	}
	if c.Rules == nil {
		return nil
	}
	r := &chainRunner{
		engine:  chain.NewEngine(c.Rules, s.cfg.Store),
		firings: make(chan chain.Firing, firingQueue),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posguard_hq_chain_fires_total",
			Help: "Chain rule firings acted on by this HQ instance, by rule and mode."}, []string{"rule", "mode"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "posguard_hq_chain_errors_total",
			Help: "Chain rule evaluations or actions that failed (logged)."}),
	}
	for _, col := range []prometheus.Collector{r.fires, r.errors} {
		if err := s.cfg.Registry.Register(col); err != nil {
			return err
		}
	}
	s.chain = r
	return nil
}

// evaluateChain runs the chain rules on events just stored, before they
// are acknowledged: an event whose evaluation a crash interrupted comes
// again and is evaluated then (observations are kept once by event id, so
// a replay counts nothing twice). A store error is logged and counted; the
// events stay stored and acknowledged.
func (s *Service) evaluateChain(ctx context.Context, evs []event.Event, stop <-chan struct{}) {
	r := s.chain
	if r == nil {
		return
	}
	fired, failed, err := r.engine.Evaluate(ctx, evs)
	for _, e := range failed {
		r.errors.Inc()
		s.log.Warn("chain rule could not judge an event", "err", e)
	}
	if err != nil {
		r.errors.Inc()
		s.log.Error("chain rules: evaluation failed; these events are not counted", "events", len(evs), "err", err)
		return
	}
	for _, f := range fired {
		select {
		case r.firings <- f:
		case <-stop:
			return
		}
	}
}

// runChain carries out firings and removes expired entries until ctx ends.
func (s *Service) runChain(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Chain.ExpireEvery)
	defer tick.Stop()
	var firings chan chain.Firing
	if s.chain != nil {
		firings = s.chain.firings
	}
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-firings:
			s.act(ctx, f)
		case <-tick.C:
			s.expire(ctx)
		}
	}
}

// act raises the firing's alert and, the first time it is raised and the
// rule enforces, takes its actions. The alert's id is the same on every HQ
// instance, so a firing seen twice is acted on once.
func (s *Service) act(ctx context.Context, f chain.Firing) {
	r := s.chain
	alert := f.Alert()
	n, err := s.cfg.Store.SaveEvents(ctx, []event.Event{alert})
	if err != nil {
		r.errors.Inc()
		s.log.Error("chain rule fired; its alert not stored, no action taken", "rule", f.Rule.ID, "event", f.Trigger.ID, "err", err)
		return
	}
	if n == 0 {
		return // raised already
	}
	r.fires.WithLabelValues(f.Rule.ID, f.Rule.Mode).Inc()
	s.log.Info("chain rule fired", "rule", f.Rule.ID, "mode", f.Rule.Mode, "reason", f.Reason, "account", f.Account, "stores", f.Stores)
	if f.Rule.Mode != chain.ModeEnforce {
		return
	}
	if f.Rule.Has(chain.ActionAlert) {
		b, err := event.Marshal(alert)
		for _, st := range f.Stores {
			if err == nil {
				err = s.publish(ctx, wire.StoreAlertsTopic(st), false, b)
			}
			if err != nil {
				r.errors.Inc()
				s.log.Error("chain alert not published to the store's displays", "rule", f.Rule.ID, "store", st, "err", err)
			}
		}
	}
	if f.Rule.Has(chain.ActionDenylist) && len(f.Accounts) > 0 {
		d := f.Detail(s.cfg.Now())
		details := make(map[string]wire.ListDetail, len(f.Accounts))
		for _, a := range f.Accounts {
			details[a] = d
		}
		if _, err := s.DenylistChange(ctx, store.ListChange{Add: f.Accounts, By: "chain:" + f.Rule.ID,
			Reason: f.Reason, Details: details}); err != nil {
			r.errors.Inc()
			s.log.Error("chain rule: denylist action failed", "rule", f.Rule.ID, "accounts", len(f.Accounts), "err", err)
		}
	}
	if f.Rule.Has(chain.ActionCase) {
		st := f.Trigger.Store
		if f.Account == "" && len(f.Stores) > 0 {
			st = f.Stores[0]
		}
		if s.cfg.Chain.Cases == nil {
			s.log.Warn("chain rule: case action without a case service; skipped", "rule", f.Rule.ID)
		} else if id, err := s.cfg.Chain.Cases.OpenOrExtend(ctx, f.Account, st, alert); err != nil {
			r.errors.Inc()
			s.log.Error("chain rule: case action failed", "rule", f.Rule.ID, "err", err)
		} else {
			s.log.Info("chain rule: case opened or extended", "rule", f.Rule.ID, "case", id)
		}
	}
}

// expire removes the denylist entries whose expiry has passed, with an
// ordinary delta (By "hq", Reason "expired"), and forgets observations no
// window needs any more.
func (s *Service) expire(ctx context.Context) {
	now := s.cfg.Now()
	if s.cfg.Signer != nil {
		details, err := s.cfg.Store.DenylistDetails(ctx)
		if err != nil {
			s.log.Error("expire denylist entries", "err", err)
		}
		var gone []string
		for a, d := range details {
			if !d.ExpiresAt.IsZero() && !d.ExpiresAt.After(now) {
				gone = append(gone, a)
			}
		}
		slices.Sort(gone)
		for len(gone) > 0 {
			part := gone[:min(len(gone), wire.MaxDeltaEntries)]
			gone = gone[len(part):]
			if _, err := s.DenylistChange(ctx, store.ListChange{Remove: part, By: "hq", Reason: "expired"}); err != nil {
				s.log.Error("expire denylist entries", "accounts", len(part), "err", err)
				break
			}
		}
	}
	if s.chain != nil {
		// Twice the longest window, and a day: a register that was offline
		// still has its late events counted against what came before.
		keep := 2*s.chain.engine.MaxWindow() + 24*time.Hour
		if n, err := s.cfg.Store.ChainPrune(ctx, now.Add(-keep)); err != nil {
			s.log.Error("prune chain observations", "err", err)
		} else if n > 0 {
			s.log.Debug("chain observations pruned", "count", n)
		}
	}
}

// chainRule is one rule in GET /v1/chain/rules.
type chainRule struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	Mode        string   `json:"mode"`
	Description string   `json:"description,omitempty"`
	Window      string   `json:"window"`
	Actions     []string `json:"actions"`
	DenylistFor string   `json:"denylistFor,omitempty"`
	// Fires counts the alerts the rule raised, by every HQ instance on
	// the store, ever (from the store's events).
	Fires int64 `json:"fires"`
}

// chainRules serves GET /v1/chain/rules: the rules in force and how often
// each fired.
func (s *Service) chainRules(w http.ResponseWriter, r *http.Request) {
	fires, err := s.cfg.Store.ChainFires(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	out := struct {
		Name  string      `json:"name,omitempty"`
		Rules []chainRule `json:"rules"`
		// Retired counts the fires of rules no longer in the document.
		Retired map[string]int64 `json:"retired,omitempty"`
	}{Rules: []chainRule{}}
	if s.chain != nil {
		out.Name = s.cfg.Chain.Rules.Metadata.Name
		for _, rl := range s.chain.engine.Rules() {
			cr := chainRule{ID: rl.ID, Kind: rl.Kind, Mode: rl.Mode, Description: rl.Description, Window: rl.Window.D().String(),
				Actions: rl.Actions, Fires: fires[rl.ID]}
			if cr.Actions == nil {
				cr.Actions = []string{}
			}
			if rl.DenylistFor > 0 {
				cr.DenylistFor = rl.DenylistFor.D().String()
			}
			delete(fires, rl.ID)
			out.Rules = append(out.Rules, cr)
		}
	}
	if len(fires) > 0 {
		out.Retired = fires
	}
	writeJSON(w, out)
}

// checkDetails refuses details for accounts the change does not add.
func checkDetails(c store.ListChange) error {
	for a, d := range c.Details {
		if !slices.Contains(c.Add, a) {
			return fmt.Errorf("details for %q, which is not added", a)
		}
		if err := d.Check(); err != nil {
			return fmt.Errorf("details for %q: %w", a, err)
		}
	}
	return nil
}
