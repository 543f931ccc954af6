// Package hq is the headquarters service: it ingests every register's
// events, alerts and status from MQTT into the store, acknowledges each
// event id once it is durable, keeps the fleet view, signs and publishes
// denylist and allowlist changes, and serves the fraud team's cases
// (hq/cases).
package hq

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/cases"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// Config wires a Service. Store and MQTT are required; without a Signer HQ
// ingests but cannot publish denylist changes.
type Config struct {
	MQTT       mqttconn.Config
	ClientID   string // default: the identity (certificate CN, else MQTT.Username, else "hq")
	ShareGroup string // "$share/GROUP/" subscriptions to split load across HQ instances
	// JetStream, when set, takes the registers' events, alerts and
	// commands from a NATS cluster's stream instead of MQTT subscriptions
	// (jetstream.go); MQTT still carries status, acks and publications.
	JetStream *JetStream
	Store     store.Store
	// Auth authenticates API callers by token or client certificate;
	// with neither Auth nor Users everyone is served as apiauth.Open,
	// which the command allows on a loopback listener only.
	Auth *apiauth.Tokens
	// Users are the console's users (--console-users): their logins make
	// sessions that call the API with their role. Nil: no logins.
	Users *apiauth.Users
	// Console tunes the console's sessions.
	Console   apiauth.ConsoleOptions
	Signer    crypto.Signer // denylist signing key
	SignerAlg string
	SignerKID string
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	Now       func() time.Time
	// BatchSize bounds how many events are stored (and acked) together.
	BatchSize int
	// APIListen is the HTTP API's listen address; its host is accepted
	// in Host headers, like localhost and loopback addresses (and every
	// IP literal when it is 0.0.0.0). APIHosts are further names clients
	// use for HQ. Any other Host is refused against DNS rebinding.
	APIListen string
	APIHosts  []string
	Chain     ChainConfig // chain_wire.go
	// PolicyKeys verify the policy bundles HQ records and publishes
	// (policies.go): the public keys the registers trust. HQ never holds
	// the policy signing key.
	PolicyKeys []bundle.TrustedKey
	// PolicyReport bounds the backtest reports of policy versions
	// (policy_report.go).
	PolicyReport PolicyReportConfig
}

// ingestQueue bounds the messages waiting to be stored; beyond it they are
// dropped unacknowledged: the broker delivers them again on the next
// connection and their registers resend them. A broker that limits the
// messages in flight to a client (mochi: 65,535 at most) never fills it.
const ingestQueue = 100_000

// Service is a running HQ instance.
type Service struct {
	cfg    Config
	log    *slog.Logger
	client paho.Client
	in     *mqttconn.Queue
	m      *metrics
	live   *liveFleet // fleet.go

	subscribed sync.Once
	consuming  sync.Once
	notReady   atomic.Int32  // sources not yet receiving: MQTT subscriptions, and JetStream when set
	ready      chan struct{} // closed once every source receives

	jsMu sync.Mutex
	js   *jsSource // the JetStream consumer, when configured and started

	chain        *chainRunner // chain_wire.go; nil without chain rules
	denyMu       sync.Mutex   // orders denylist changes and their publication
	lastSnapshot time.Time    // when this instance last published the snapshot; under denyMu

	allowMu           sync.Mutex // the same for the allowlist (allowlist.go)
	lastAllowSnapshot time.Time
	cases             *cases.Service // cases_http.go
	policies          *policyHistory // policies.go
	feed              feedSignal     // alerts_http.go: wakes and ends the alert streams
	auth              apiauth.Authority
}

// New checks cfg and prepares a Service; Run connects.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("hq: no store")
	}
	if err := cfg.MQTT.Validate(); err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	if cfg.JetStream != nil {
		if cfg.ShareGroup != "" {
			return nil, errors.New("hq: a share group and JetStream: choose one way to split the load")
		}
		j := *cfg.JetStream
		if err := j.validate(); err != nil {
			return nil, fmt.Errorf("hq: %w", err)
		}
		cfg.JetStream = &j
	}
	if cfg.ShareGroup != "" {
		if err := wire.ValidateShareGroup(cfg.ShareGroup); err != nil {
			return nil, fmt.Errorf("hq: %w", err)
		}
	}
	for _, h := range cfg.APIHosts {
		if err := httpserve.CheckName(h); err != nil {
			return nil, fmt.Errorf("hq: API host: %w", err)
		}
	}
	if cfg.ClientID == "" {
		// Brokers bind the client id to the identity (its certificate's
		// CN, or its username).
		id, err := cfg.MQTT.Identity(wire.HQUsername)
		if err != nil {
			return nil, fmt.Errorf("hq: %w", err)
		}
		cfg.ClientID = id
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, m: m, in: mqttconn.NewQueue(ingestQueue), ready: make(chan struct{}), live: newLiveFleet(cfg.Logger)}
	s.notReady.Store(1)
	if cfg.JetStream != nil {
		s.notReady.Store(2)
	}
	s.auth.Tokens = cfg.Auth
	if cfg.Users != nil {
		s.auth.Console = apiauth.NewConsole(cfg.Users, cfg.Console)
	}
	s.cases = cases.New(cfg.Store, s, cfg.Now)                     // cases_http.go
	s.policies = newPolicyHistory()                                // policies.go
	lm, err := newListMetrics(cfg.Registry, cfg.Store, cfg.Logger) // metrics_lists.go
	if err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	s.cases.OnMove(lm.moved)
	if s.cfg.Chain.Cases == nil {
		s.cfg.Chain.Cases = s.cases // the case action opens HQ's own cases
	}
	if err := s.newChain(); err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	if err := cfg.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "posguard_hq_messages_dropped_total",
		Help: "MQTT messages dropped because the ingest queue was full (their registers resend them)."},
		func() float64 { return float64(s.in.Dropped()) })); err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	// The handler is installed before connecting: the broker delivers the
	// events queued in HQ's session the moment it is back, before any
	// subscription is made again. It only enqueues, never blocking, and
	// leaves the broker's acknowledgement to ingest, once stored.
	opts, err := cfg.MQTT.Options(mqttconn.Client{
		ID: cfg.ClientID, Handler: s.receive, ManualAck: true,
		OnConnect: s.onConnect, OnLost: func(error) { s.m.connected.Set(0) }, Log: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	s.client = paho.NewClient(opts)
	s.client.AddRoute(wire.PolicyFilter, s.onPolicy) // policies.go
	return s, nil
}

// Ready is closed once HQ is connected and subscribed for the first time
// (and, with JetStream, consuming).
func (s *Service) Ready() <-chan struct{} { return s.ready }

func (s *Service) sourceReady() {
	if s.notReady.Add(-1) == 0 {
		close(s.ready)
	}
}

// Run connects to the broker and ingests until ctx ends. It returns once
// the broker connection is closed and the last batch is stored.
func (s *Service) Run(ctx context.Context) error {
	// Connect retries in the background: HQ starts even while the broker
	// is still coming up, and its HTTP view works meanwhile.
	s.client.Connect()
	chainCtx, chainStop := context.WithCancel(context.Background())
	chainDone := make(chan struct{})
	go func() {
		defer close(chainDone)
		s.runChain(chainCtx) // chain_wire.go
	}()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		s.ingest(stop)
	}()
	var js *jsSource
	if s.cfg.JetStream != nil {
		var err error
		if js, err = s.startJetStream(ctx); err != nil && ctx.Err() == nil {
			s.client.Disconnect(100)
			close(stop)
			<-done
			chainStop()
			<-chainDone
			return fmt.Errorf("hq: %w", err)
		}
		if js != nil {
			s.jsMu.Lock()
			s.js = js
			s.jsMu.Unlock()
			s.consuming.Do(s.sourceReady)
		}
	}
	go s.expireAllowlistEvery(ctx, time.Minute)
	go s.recordPolicies(ctx) // policies.go
	<-ctx.Done()
	s.feed.stop() // alerts_http.go: end the alert streams
	s.live.stop() // fleet_http.go: end the console's streams
	if js != nil {
		js.stop()
		defer js.close() // after ingest has acknowledged what it stores
	}
	// Stop the flow, then store what already arrived. Anything that comes
	// later is never acknowledged, so the broker delivers it again.
	disconnected := make(chan struct{})
	go func() {
		s.client.Disconnect(1000)
		close(disconnected)
	}()
	close(stop)
	<-done
	chainStop()
	<-chainDone
	// A connected client is gone within the quiesce time; one still
	// trying to connect finishes its attempt first (up to the connect
	// timeout), which shutdown need not wait for.
	select {
	case <-disconnected:
	case <-time.After(2 * time.Second):
	}
	return nil
}

func (s *Service) onConnect(c paho.Client) {
	s.m.connected.Set(1)
	filters := map[string]byte{wire.HQStatusFilter: 1}
	if s.cfg.JetStream == nil {
		for _, f := range wire.HQFilters(s.cfg.ShareGroup) {
			filters[f] = 1
		}
	}
	filters[s.live.topic] = 1
	// The pushed policy: routed to onPolicy (policies.go), which records
	// it and hands it to the rollout view (fleet_http.go).
	filters[wire.PolicyFilter] = 1
	go func() {
		// A subscription lost to a connection that dropped meanwhile is
		// made again by the next onConnect; one refused on a live
		// connection is retried, or HQ would sit connected and deaf.
		for attempt := 1; c.IsConnectionOpen(); attempt++ {
			tok := c.SubscribeMultiple(filters, nil) // the default handler takes them
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				s.subscribed.Do(s.sourceReady)
				return
			}
			s.log.Error("subscribe failed; retrying", "attempt", attempt, "err", tok.Error())
			time.Sleep(time.Second)
		}
	}()
	go s.publishSnapshot("connect", false)
	go s.publishAllowSnapshot("connect", false)
}

// receive is HQ's paho message handler.
// It only enqueues, never blocking: storing (and acking) happens on the
// ingest goroutine, so paho's router is never held up by the database or by
// our own publishes. A message the live fleet view consumes whole (HQ's own
// sync token, a status repeated byte for byte) has nothing to store and is
// acknowledged at once.
func (s *Service) receive(_ paho.Client, m paho.Message) {
	if s.live.observe(m, s.cfg.Now()) { // fleet.go
		m.Ack()
		return
	}
	s.in.Push(m)
}

// ingest stores messages in batches: events once by id then acked, status
// upserted, resync requests answered.
func (s *Service) ingest(stop <-chan struct{}) {
	ctx := context.Background()
	for {
		select {
		case <-stop:
			// Store what paho already handed over, waiting briefly for
			// the last deliveries; anything later is never acknowledged,
			// so the broker delivers it again on the next connection.
			for {
				if batch := s.in.Take(s.cfg.BatchSize); len(batch) > 0 {
					s.handle(ctx, batch, stop)
					continue
				}
				select {
				case <-s.in.Ready():
				case <-time.After(100 * time.Millisecond):
					return
				}
			}
		case <-s.in.Ready():
			for batch := s.in.Take(s.cfg.BatchSize); len(batch) > 0; batch = s.in.Take(s.cfg.BatchSize) {
				s.handle(ctx, batch, stop)
			}
		}
	}
}

// handle stores one batch and only then acknowledges its messages to the
// broker, in the order they came (MQTT's order of PUBACKs). A message that
// is refused is acknowledged too: it would be refused every time.
func (s *Service) handle(ctx context.Context, msgs []paho.Message, stop <-chan struct{}) {
	if len(msgs) == 0 {
		return
	}
	var evs []event.Event
	for _, m := range msgs {
		store, reg, kind, err := wire.ParseRegTopic(m.Topic())
		if err != nil {
			s.reject(m, err)
			continue
		}
		switch kind {
		case wire.KindEvents, wire.KindAlerts:
			ev, err := event.Parse(m.Payload())
			if err != nil {
				s.reject(m, err)
				continue
			}
			// The broker ACL confines a register to its own topic; the
			// event must name the same register, or it is spoofed.
			if ev.Store != store || ev.Register != reg {
				s.reject(m, fmt.Errorf("event %s names %s/%s", ev.ID, ev.Store, ev.Register))
				continue
			}
			evs = append(evs, ev)
		case wire.KindStatus:
			st, err := wire.ParseStatus(m.Payload())
			if err == nil && (st.Store != store || st.Register != reg) {
				err = fmt.Errorf("status names %s/%s", st.Store, st.Register)
			}
			if err != nil {
				s.reject(m, err)
				continue
			}
			now := s.cfg.Now()
			if err := s.cfg.Store.SaveStatus(ctx, st, now); err != nil {
				s.log.Error("store status", "register", store+"/"+reg, "err", err)
			} else {
				s.live.stored(st, now) // fleet_http.go: tell the console's streams
			}
		case wire.KindCmd:
			s.command(m)
		}
	}
	if !s.saveAndAck(ctx, evs, stop) {
		return
	}
	for _, m := range msgs {
		m.Ack()
	}
}

func (s *Service) reject(m paho.Message, err error) {
	s.m.rejected.Inc()
	s.log.Warn("message refused", "topic", m.Topic(), "err", err)
}

// saveAndAck stores events, then acknowledges each register's ids. Nothing
// is acknowledged that is not stored: a failed store is retried (HQ stops
// taking messages meanwhile, and the broker keeps the rest) until it works
// or HQ stops; then it reports false and the events stay unacknowledged, so
// the broker and the registers send them again.
func (s *Service) saveAndAck(ctx context.Context, evs []event.Event, stop <-chan struct{}) bool {
	if len(evs) == 0 {
		return true
	}
	var n int
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		var err error
		if n, err = s.cfg.Store.SaveEvents(ctx, evs); err == nil {
			break
		}
		s.m.storeErrors.Inc()
		s.log.Error("store events; retrying, nothing acknowledged meanwhile", "events", len(evs), "retryIn", wait, "err", err)
		select {
		case <-stop:
			return false
		case <-time.After(wait):
		}
	}
	s.m.stored.Add(float64(n))
	s.m.duplicates.Add(float64(len(evs) - n))
	if n > 0 {
		s.feed.wake() // alerts_http.go: the streams read what is new
	}
	s.evaluateChain(ctx, evs) // chain_wire.go
	byReg := make(map[[2]string][]string)
	for _, ev := range evs {
		k := [2]string{ev.Store, ev.Register}
		byReg[k] = append(byReg[k], ev.ID)
	}
	for k, ids := range byReg {
		for len(ids) > 0 {
			part := ids[:min(len(ids), wire.MaxAckIDs)]
			ids = ids[len(part):]
			b, err := wire.Ack{IDs: part}.Marshal()
			if err != nil {
				s.log.Error("encode ack", "err", err)
				continue
			}
			// Fire and forget: a lost ack only means the register resends
			// and the store skips the duplicate.
			s.client.Publish(wire.AckTopic(k[0], k[1]), 1, false, b)
		}
	}
	return true
}

func (s *Service) command(m paho.Message) {
	c, err := wire.ParseCommand(m.Topic(), m.Payload())
	if err != nil {
		s.reject(m, err)
		return
	}
	switch {
	case c.Type == wire.CmdResync && c.List == wire.SubjectAllowlist:
		s.log.Info("allowlist resync requested", "register", c.Store+"/"+c.Register, "haveSeq", c.HaveSeq)
		go s.publishAllowSnapshot("resync by "+c.Store+"/"+c.Register, true)
	case c.Type == wire.CmdResync:
		s.log.Info("denylist resync requested", "register", c.Store+"/"+c.Register, "haveSeq", c.HaveSeq)
		go s.publishSnapshot("resync by "+c.Store+"/"+c.Register, true)
	}
}
