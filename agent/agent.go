// Package agent is the register daemon: it reads scans from the scanner,
// builds the customer's cart, decides payment tokens with the active policy
// against the register's durable history, makes every decision durable in
// one bbolt transaction before acting on it, forwards what is allowed to the
// POS, holds what needs review, and serves a local HTTP API and metrics.
//
// Wiring is explicit: New takes a validated configuration and Options, Run
// opens everything and runs until its context ends.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/agent/hqsync"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/firmware-bridge/posout"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/scanner"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// Options are the agent's dependencies beyond its configuration.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (default time.Now); decisions take their time
	// from it.
	Now     func() time.Time
	Version string // build version, for status
	// StateMaxSize caps the state file (bbolt MaxSize, 0: no cap);
	// writes beyond it fail as on a full disk.
	StateMaxSize int
	// ScanQueue is how many scans may wait for the session (default 64).
	ScanQueue int
	// HTTPLimits bound the API's connections and requests (zero fields:
	// httpserve.Defaults).
	HTTPLimits httpserve.Limits
}

// Agent is one register daemon. Create it with New, start it with Run.
type Agent struct {
	base  *config.Config // as started: what needs a restart comes from here
	live  atomic.Pointer[config.Config]
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	start time.Time

	st  *state.Store
	pol atomic.Pointer[active]
	m   *metrics
	scn *scanner.Scanner
	pos *posout.POS
	hq  *hqsync.Client

	reviews *reviews
	pins    *pinGuard
	recent  *ring
	last    atomic.Pointer[wire.DecisionSummary]
	cmdsMu  sync.Mutex
	cmds    map[string]struct{} // ids of applied HQ commands

	ready chan struct{}
	addr  atomic.Pointer[string]
	epoch string // random per process, makes sale ids unique across restarts
	seq   atomic.Uint64
	// connSeen is when the HQ broker connection was last seen up (unix ns).
	connSeen atomic.Int64
}

// New checks the configuration and prepares an agent; it opens nothing.
func New(cfg *config.Config, opts Options) (*Agent, error) {
	if cfg == nil {
		return nil, errors.New("agent: no configuration")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if len(cfg.AccountKey) == 0 {
		return nil, errors.New("agent: configuration keys not loaded (config.Load or Config.LoadKeys)")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ScanQueue <= 0 {
		opts.ScanQueue = 64
	}
	var e [4]byte
	if _, err := rand.Read(e[:]); err != nil {
		return nil, fmt.Errorf("agent: sale id epoch: %w", err)
	}
	a := &Agent{
		base: cfg, opts: opts, now: opts.Now,
		log:     opts.Logger.With("store", cfg.Store, "register", cfg.Register),
		reviews: newReviews(), pins: newPINGuard(), recent: newRing(1000),
		cmds: map[string]struct{}{}, ready: make(chan struct{}), epoch: hex.EncodeToString(e[:]),
	}
	a.live.Store(cfg)
	return a, nil
}

// Ready is closed once Run has opened the state file and the HTTP API.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Addr is the HTTP API's address once Ready.
func (a *Agent) Addr() string {
	if p := a.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// Run opens the state file, the links and the HTTP API and runs until ctx
// ends. Shutdown stops taking scans first, lets the decision in flight and
// HTTP requests finish, stops the HQ link and closes the state file last.
// Run is called once per Agent.
func (a *Agent) Run(ctx context.Context) (err error) {
	cfg := a.base
	a.start = a.now()
	st, err := state.Open(cfg.State, state.Options{
		Store: cfg.Store, Register: cfg.Register, Retention: cfg.Retention.Keep,
		OutboxCap: cfg.Retention.OutboxCap, MaxSize: a.opts.StateMaxSize, Logger: a.log,
		// The store's registers share facts over the HQ broker link.
		ShareFacts: cfg.HQ != nil,
	})
	if err != nil {
		return err
	}
	a.st = st
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	a.m = newMetrics(st)

	p, src, notes := loadPolicy(st, cfg.TrustedKeys, cfg.Store, cfg.Policy.Bootstrap, a.now())
	for _, n := range notes {
		a.log.Warn(n)
	}
	a.setPolicy(p, src)

	open, err := st.OpenReviews()
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	for _, r := range open {
		a.reviews.add(r.ID, r.Deadline, originUnknown)
	}
	if len(open) > 0 {
		a.log.Info("held reviews restored", "open", len(open))
	}

	if cfg.POS != nil {
		if a.pos, err = posout.New(*cfg.POS, a.log, a.linkState("pos")); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	if cfg.Scanner != nil {
		if a.scn, err = scanner.New(*cfg.Scanner, a.log, a.linkState("scanner")); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		a.m.scannerDrops(a.scn)
	}
	a.m.links.WithLabelValues("scanner").Set(0)
	a.m.links.WithLabelValues("pos").Set(0)
	if cfg.HQ != nil {
		a.hq, err = hqsync.New(hqsync.Config{
			MQTT: cfg.HQ.Config, ResendAfter: cfg.HQ.ResendAfter, Store: cfg.Store, Register: cfg.Register, State: st,
			Trusted: cfg.TrustedKeys, Version: a.version(), Logger: a.log, Now: a.now,
			ActivePolicy: func() int64 { return a.pol.Load().version() },
			OnPolicy:     func(p *policy.Policy) { a.setPolicy(p, SourceSigned) },
			OnCommand:    a.command,
			Status:       a.wireStatus,
		})
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("agent: listen on %s (http.listen): %w", cfg.HTTP.Listen, err)
	}
	addr := ln.Addr().String()
	a.addr.Store(&addr)
	srv, ln := httpserve.Server(ln, a.Handler(), a.opts.HTTPLimits, a.log)

	// Background work runs until the scans and decisions have stopped.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	goRun := func(wg *sync.WaitGroup, f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if a.pos != nil {
		goRun(&bgWG, func() { a.pos.Run(bg) })
	}
	if a.hq != nil {
		goRun(&bgWG, func() {
			if err := a.hq.Run(bg); err != nil {
				a.log.Error("HQ link stopped", "err", err)
			}
		})
	}
	goRun(&bgWG, func() { a.housekeeping(bg) })
	goRun(&bgWG, func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("HTTP API stopped", "err", err)
		}
	})

	scanCtx, stopScans := context.WithCancel(ctx)
	var scanWG sync.WaitGroup
	if a.scn != nil {
		scans := make(chan scan.Scan, a.opts.ScanQueue)
		goRun(&scanWG, func() {
			a.scn.Run(scanCtx, scans)
			close(scans)
		})
		goRun(&scanWG, func() { a.session(scans) })
	}
	a.log.Info("agent running", "http", "http://"+addr, "policy", a.policyName(), "state", cfg.State)
	close(a.ready)

	<-ctx.Done()
	a.log.Info("shutting down: no more scans; finishing the decision in flight")
	stopScans()
	scanWG.Wait()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := srv.Shutdown(shutdown); err != nil {
		a.log.Warn("HTTP API shutdown", "err", err)
	}
	cancel()
	stopBG()
	bgWG.Wait()
	a.log.Info("agent stopped")
	return nil
}

func (a *Agent) version() string {
	if a.opts.Version == "" {
		return "dev"
	}
	return a.opts.Version
}

func (a *Agent) linkState(name string) func(bool) {
	return func(up bool) {
		v := 0.0
		if up {
			v = 1
		}
		a.m.links.WithLabelValues(name).Set(v)
		if a.hq != nil {
			a.hq.StatusChanged()
		}
	}
}

func (a *Agent) setPolicy(p *policy.Policy, source string) {
	a.pol.Store(newActive(p, source, a.base.AccountKey))
	if a.m != nil {
		v := 0.0
		if p != nil {
			v = float64(p.Metadata.Version)
		}
		a.m.policyVer.Set(v)
	}
	if p != nil {
		a.log.Info("policy in force", "name", p.Metadata.Name, "version", p.Metadata.Version, "source", source,
			"expires", p.Metadata.ExpiresAt)
	} else {
		a.log.Warn("no policy: failMode decides every sale")
	}
}

func (a *Agent) policyName() string {
	if p := a.pol.Load().p; p != nil {
		return p.Metadata.Name + " v" + strconv.FormatInt(p.Metadata.Version, 10)
	}
	return "none"
}

// offline reports whether the policy's offline limits apply. A register
// without hq is standalone, never offline. Otherwise it is offline when HQ
// has not been heard from (acks, policy, denylist; since start if never)
// for hq.offlineAfter and either the broker connection has been down that
// long too, or events have waited that long for HQ's ack. A quiet register
// hears nothing from HQ while all is well, so silence alone is not enough.
// It is offline too when the store facts link has been down that long
// (broker gone, or the facts subscription refused): it then decides on
// what it has, without its peers' spent tokens and sales.
func (a *Agent) offline(now time.Time) bool {
	if a.hq == nil {
		return false
	}
	after := config.DefaultOfflineAfter
	if h := a.live.Load().HQ; h != nil && h.OfflineAfter > 0 {
		after = h.OfflineAfter
	}
	if lost := a.hq.PeersLost(); !lost.IsZero() {
		if lost.Before(a.start) {
			lost = a.start
		}
		if now.Sub(lost) > after {
			return true
		}
	}
	last := a.hq.LastContact()
	if last.Before(a.start) {
		last = a.start
	}
	if now.Sub(last) <= after {
		return false
	}
	if a.hq.Connected() {
		a.connSeen.Store(now.UnixNano())
		_, oldest := a.st.OutboxStats()
		return !oldest.IsZero() && now.Sub(oldest) > after
	}
	if seen := time.Unix(0, a.connSeen.Load()); seen.After(last) {
		last = seen
	}
	return now.Sub(last) > after
}

// housekeeping times out held reviews and prunes the state file.
func (a *Agent) housekeeping(ctx context.Context) {
	prune := time.NewTicker(a.base.Retention.PruneEvery)
	defer prune.Stop()
	every := min(a.live.Load().Review.Timeout/4, time.Second)
	every = max(every, 20*time.Millisecond)
	sweep := time.NewTicker(every)
	defer sweep.Stop()
	a.prune()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			a.prune()
		case <-sweep.C:
			a.timeoutReviews(ctx)
			if a.hq != nil {
				v := 0.0
				if a.hq.Connected() {
					v = 1
					a.connSeen.Store(a.now().UnixNano())
				}
				a.m.links.WithLabelValues("hq").Set(v)
			}
		}
	}
}

func (a *Agent) prune() {
	n, err := a.st.Prune(a.now())
	if err != nil {
		a.log.Error("prune state file", "err", err)
		return
	}
	if n > 0 {
		a.log.Info("state file pruned", "entries", n)
	}
}

// Reload applies a re-read configuration: manager PINs, review and session
// timeouts, the void barcode, offlineAfter and the bootstrap policy (while
// no signed policy is in force) change live; the keys listed as needing a
// restart keep their old values and are logged.
func (a *Agent) Reload(cfg *config.Config) {
	if keys := config.RestartNeeded(a.base, cfg); len(keys) > 0 {
		a.log.Warn("configuration reloaded; these changes need a restart", "keys", keys)
	} else {
		a.log.Info("configuration reloaded")
	}
	a.live.Store(cfg)
	if cur := a.pol.Load(); cur.source != SourceSigned || cur.p == nil || cur.p.Expired(a.now()) {
		if cfg.Policy.Bootstrap == "" {
			return
		}
		p, err := policy.LoadFile(cfg.Policy.Bootstrap)
		switch {
		case err != nil:
			a.log.Error("bootstrap policy not reloaded; keeping the current one", "err", err)
		case p.Expired(a.now()):
			a.log.Error("bootstrap policy expired; keeping the current one", "name", p.Metadata.Name, "version", p.Metadata.Version)
		default:
			a.setPolicy(p, SourceBootstrap)
		}
	}
}

// newSaleID makes a sale id unique across the register's restarts; it is
// also the review id of a held sale, which displays show.
func (a *Agent) newSaleID(at time.Time) string {
	return a.base.Register + "-" + at.UTC().Format("20060102T150405") + "-" + a.epoch + "-" + strconv.FormatUint(a.seq.Add(1), 10)
}
