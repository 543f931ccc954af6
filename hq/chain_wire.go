package hq

import (
	"context"
	"errors"
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
	// Lease is how long an instance holds a firing it is carrying out
	// before another may take it over (it died, or stalls); a firing
	// whose actions failed is tried again when its lease runs out.
	// Default one minute.
	Lease time.Duration
}

// Firings are carried out from the store's outbox: Evaluate keeps each
// firing with the observation that trips it, and the chain worker claims
// pending ones (its own at once, others' when their lease runs out),
// acts, and marks them done. Every action may run twice (a crash between
// doing and marking): each is idempotent.
const (
	// chainClaim is how many firings the worker claims at a time: few,
	// so that a slow action does not hold many leases.
	chainClaim = 16
	// chainTries bounds the attempts at a firing whose actions keep
	// failing; then it is given up (logged, counted).
	chainTries = 10
)

// chainRunner evaluates the chain rules on stored events and carries out
// what fires, off the ingest goroutine.
type chainRunner struct {
	engine *chain.Engine
	// wake tells the worker that firings are pending.
	wake   chan struct{}
	fires  *prometheus.CounterVec
	errors prometheus.Counter
}

func (s *Service) newChain() error {
	c := s.cfg.Chain
	if c.ExpireEvery <= 0 {
		c.ExpireEvery = time.Minute
		s.cfg.Chain.ExpireEvery = c.ExpireEvery
	}
	if c.Lease <= 0 {
		s.cfg.Chain.Lease = time.Minute
	}
	if c.Rules == nil {
		return nil
	}
	r := &chainRunner{
		engine: chain.NewEngine(c.Rules, s.cfg.Store),
		wake:   make(chan struct{}, 1),
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
// a replay counts nothing twice). What fires is kept in the store with
// the observations, for the worker (runChain). A store error is logged
// and counted; the events stay stored and acknowledged.
func (s *Service) evaluateChain(ctx context.Context, evs []event.Event) {
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
	if len(fired) > 0 {
		select {
		case r.wake <- struct{}{}:
		default: // already woken
		}
	}
}

// runChain carries out pending firings and removes expired entries until
// ctx ends. It starts with the firings this instance had claimed before a
// restart.
func (s *Service) runChain(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Chain.ExpireEvery)
	defer tick.Stop()
	var wake chan struct{}
	// Others' expired leases and failed firings are looked for this often.
	var retry <-chan time.Time
	if s.chain != nil {
		wake = s.chain.wake
		if err := s.cfg.Store.ChainRelease(ctx, s.cfg.ClientID); err != nil {
			s.chain.errors.Inc()
			s.log.Error("chain rules: release this instance's firings", "err", err)
		}
		s.actPending(ctx)
		t := time.NewTicker(max(s.cfg.Chain.Lease/4, 10*time.Millisecond))
		defer t.Stop()
		retry = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			s.actPending(ctx)
		case <-retry:
			s.actPending(ctx)
		case <-tick.C:
			s.expire(ctx)
		}
	}
}

// actPending claims pending firings and carries them out until none is
// left to claim.
func (s *Service) actPending(ctx context.Context) {
	r := s.chain
	for ctx.Err() == nil {
		claimed, err := s.cfg.Store.ChainClaim(ctx, s.cfg.ClientID, s.cfg.Chain.Lease, chainClaim)
		if err != nil {
			if ctx.Err() == nil {
				r.errors.Inc()
				s.log.Error("chain rules: claim pending firings", "err", err)
			}
			return
		}
		if len(claimed) == 0 {
			return
		}
		for _, sf := range claimed {
			p, err := chain.ParsePending(sf)
			if err == nil {
				err = s.act(ctx, p.Firing)
			} else {
				p.Tries = chainTries // unreadable: trying again will not help
			}
			if err != nil && ctx.Err() != nil {
				return // stopping: resumed at the next start
			}
			if err != nil {
				r.errors.Inc()
				if p.Tries < chainTries {
					s.log.Error("chain rule firing: action failed; tried again when its lease ends", "firing", sf.ID,
						"try", p.Tries, "retryIn", s.cfg.Chain.Lease, "err", err)
					continue
				}
				s.log.Error("chain rule firing: action failed; given up", "firing", sf.ID, "tries", p.Tries, "err", err)
			}
			if err := s.cfg.Store.ChainDone(ctx, sf.ID); err != nil {
				if ctx.Err() == nil {
					r.errors.Inc()
					s.log.Error("chain rule firing carried out, not marked done; it will be again (idempotent)", "firing", sf.ID, "err", err)
				}
				return
			}
		}
	}
}

// act raises the firing's alert and, if the rule enforces, takes its
// actions. Each step may be done again after a crash or a failed step,
// and then does nothing twice: the alert's id is the firing's, a
// denylist entry already carrying the firing is not added again, a case
// holds an alert once; the store displays may see the alert twice.
func (s *Service) act(ctx context.Context, f chain.Firing) error {
	r := s.chain
	alert := f.Alert()
	n, err := s.cfg.Store.SaveEvents(ctx, []event.Event{alert})
	if err != nil {
		return fmt.Errorf("store its alert: %w", err)
	}
	if n > 0 {
		r.fires.WithLabelValues(f.Rule.ID, f.Rule.Mode).Inc()
		s.log.Info("chain rule fired", "rule", f.Rule.ID, "mode", f.Rule.Mode, "reason", f.Reason, "account", f.Account, "stores", f.Stores)
	}
	if f.Rule.Mode != chain.ModeEnforce {
		return nil
	}
	var errs []error
	if f.Rule.Has(chain.ActionAlert) {
		b, err := event.Marshal(alert)
		for _, st := range f.Stores {
			if err == nil {
				err = s.publish(ctx, wire.StoreAlertsTopic(st), false, b)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("alert to store %s's displays: %w", st, err))
				break
			}
		}
	}
	if f.Rule.Has(chain.ActionDenylist) && len(f.Accounts) > 0 {
		if err := s.chainDenylist(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("denylist: %w", err))
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
			errs = append(errs, fmt.Errorf("case: %w", err))
		} else {
			s.log.Info("chain rule: case opened or extended", "rule", f.Rule.ID, "case", id)
		}
	}
	return errors.Join(errs...)
}

// chainDenylist adds the firing's accounts with an expiring detail, but
// not those whose entry already carries this firing (done before a crash
// or a failed later step): a firing adds an entry once.
func (s *Service) chainDenylist(ctx context.Context, f chain.Firing) error {
	if s.cfg.Signer == nil {
		s.log.Warn("chain rule: denylist action without a signing key; skipped", "rule", f.Rule.ID)
		return nil
	}
	have, err := s.cfg.Store.DenylistDetails(ctx)
	if err != nil {
		return err
	}
	d := f.Detail(s.cfg.Now())
	details := make(map[string]wire.ListDetail, len(f.Accounts))
	var add []string
	for _, a := range f.Accounts {
		if h, ok := have[a]; ok && h.Rule == d.Rule && len(h.Events) > 0 && h.Events[0] == f.Trigger.ID {
			continue
		}
		add = append(add, a)
		details[a] = d
	}
	if len(add) == 0 {
		return nil
	}
	_, err = s.DenylistChange(ctx, store.ListChange{Add: add, By: "chain:" + f.Rule.ID, Reason: f.Reason, Details: details})
	return err
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
