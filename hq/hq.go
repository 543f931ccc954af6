// Package hq is the headquarters service: it ingests every register's
// events, alerts and status from MQTT into the store, acknowledges each
// event id once it is durable, keeps the fleet view, and signs and
// publishes denylist changes.
package hq

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

// Config wires a Service. Store and MQTT are required; without a Signer HQ
// ingests but cannot publish denylist changes.
type Config struct {
	MQTT       mqttconn.Config
	ClientID   string // default: the identity (certificate CN, else MQTT.Username, else "hq")
	ShareGroup string // "$share/GROUP/" subscriptions to split load across HQ instances
	Store      store.Store
	Signer     crypto.Signer // denylist signing key
	SignerAlg  string
	SignerKID  string
	Logger     *slog.Logger
	Registry   prometheus.Registerer
	Now        func() time.Time
	// BatchSize bounds how many events are stored (and acked) together.
	BatchSize int
}

// ingestQueue bounds the messages waiting to be stored; beyond it they are
// dropped, unacked, and their registers resend them.
const ingestQueue = 100_000

// Service is a running HQ instance.
type Service struct {
	cfg    Config
	log    *slog.Logger
	client paho.Client
	in     *mqttconn.Queue
	m      *metrics

	readyOnce sync.Once
	ready     chan struct{} // closed once the first subscriptions are granted

	denyMu       sync.Mutex // orders denylist changes and their publication
	lastSnapshot time.Time  // when this instance last published the snapshot; under denyMu
}

// New checks cfg and prepares a Service; Run connects.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("hq: no store")
	}
	if err := cfg.MQTT.Validate(); err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	if cfg.ShareGroup != "" {
		if err := wire.ValidateShareGroup(cfg.ShareGroup); err != nil {
			return nil, fmt.Errorf("hq: %w", err)
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
	s := &Service{cfg: cfg, log: cfg.Logger, m: m, in: mqttconn.NewQueue(ingestQueue), ready: make(chan struct{})}
	if err := cfg.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "posguard_hq_messages_dropped_total",
		Help: "MQTT messages dropped because the ingest queue was full (their registers resend them)."},
		func() float64 { return float64(s.in.Dropped()) })); err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	opts, err := cfg.MQTT.Options(cfg.ClientID)
	if err != nil {
		return nil, fmt.Errorf("hq: %w", err)
	}
	opts.SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.m.connected.Set(0)
			s.log.Warn("broker connection lost; reconnecting", "err", err)
		}).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			s.log.Warn("message on an unexpected topic", "topic", m.Topic())
		})
	s.client = paho.NewClient(opts)
	return s, nil
}

// Ready is closed once HQ is connected and subscribed for the first time.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run connects to the broker and ingests until ctx ends. It returns once
// the broker connection is closed and the last batch is stored.
func (s *Service) Run(ctx context.Context) error {
	// Connect retries in the background: HQ starts even while the broker
	// is still coming up, and its HTTP view works meanwhile.
	s.client.Connect()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		s.ingest(stop)
	}()
	<-ctx.Done()
	// Stop the flow, then store what already arrived. Anything that comes
	// later is never acked, so its register sends it again.
	go s.client.Disconnect(1000)
	close(stop)
	<-done
	return nil
}

func (s *Service) onConnect(c paho.Client) {
	s.m.connected.Set(1)
	s.log.Info("connected to broker")
	filters := make(map[string]byte)
	for _, f := range wire.HQFilters(s.cfg.ShareGroup) {
		filters[f] = 1
	}
	// The handler only enqueues, never blocking: storing (and acking)
	// happens on the ingest goroutine, so paho's router is never held up
	// by the database or by our own publishes.
	handler := func(_ paho.Client, m paho.Message) { s.in.Push(m) }
	go func() {
		// A subscription lost to a connection that dropped meanwhile is
		// made again by the next onConnect; one refused on a live
		// connection is retried, or HQ would sit connected and deaf.
		for attempt := 1; c.IsConnectionOpen(); attempt++ {
			tok := c.SubscribeMultiple(filters, handler)
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				s.readyOnce.Do(func() { close(s.ready) })
				return
			}
			s.log.Error("subscribe failed; retrying", "attempt", attempt, "err", tok.Error())
			time.Sleep(time.Second)
		}
	}()
	go s.publishSnapshot("connect", false)
}

// ingest stores messages in batches: events once by id then acked, status
// upserted, resync requests answered.
func (s *Service) ingest(stop <-chan struct{}) {
	ctx := context.Background()
	for {
		select {
		case <-stop:
			// Store what paho already handed over, waiting briefly for
			// the last deliveries; anything later is never acked, so its
			// register sends it again.
			for {
				if batch := s.in.Take(s.cfg.BatchSize); len(batch) > 0 {
					s.handle(ctx, batch)
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
				s.handle(ctx, batch)
			}
		}
	}
}

func (s *Service) handle(ctx context.Context, msgs []paho.Message) {
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
			if err := s.cfg.Store.SaveStatus(ctx, st, s.cfg.Now()); err != nil {
				s.log.Error("store status", "register", store+"/"+reg, "err", err)
			}
		case wire.KindCmd:
			s.command(m)
		}
	}
	s.saveAndAck(ctx, evs)
}

func (s *Service) reject(m paho.Message, err error) {
	s.m.rejected.Inc()
	s.log.Warn("message refused", "topic", m.Topic(), "err", err)
}

// saveAndAck stores events, then acknowledges each register's ids. Nothing
// is acked that is not stored; a failure leaves the events unacked and the
// registers resend them.
func (s *Service) saveAndAck(ctx context.Context, evs []event.Event) {
	if len(evs) == 0 {
		return
	}
	n, err := s.cfg.Store.SaveEvents(ctx, evs)
	if err != nil {
		s.m.storeErrors.Inc()
		s.log.Error("store events; registers will resend", "events", len(evs), "err", err)
		return
	}
	s.m.stored.Add(float64(n))
	s.m.duplicates.Add(float64(len(evs) - n))
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
}

func (s *Service) command(m paho.Message) {
	c, err := wire.ParseCommand(m.Topic(), m.Payload())
	if err != nil {
		s.reject(m, err)
		return
	}
	if c.Type == wire.CmdResync {
		s.log.Info("denylist resync requested", "register", c.Store+"/"+c.Register, "haveSeq", c.HaveSeq)
		go s.publishSnapshot("resync by "+c.Store+"/"+c.Register, true)
	}
}
