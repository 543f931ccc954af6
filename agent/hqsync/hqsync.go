// Package hqsync is the register's link to headquarters over MQTT: it
// delivers the bbolt outbox (an event leaves only when HQ acknowledges its
// id), applies signed policy bundles and denylist changes, carries commands
// from the store display to the agent, and keeps the retained status.
package hqsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// Config wires a Client to the agent.
type Config struct {
	MQTT     mqttconn.Config
	Store    string
	Register string
	State    *state.Store
	// Trusted are the HQ keys whose policy bundles and denylist messages
	// this register accepts.
	Trusted []bundle.TrustedKey
	Version string // posguard build version, for status
	Logger  *slog.Logger
	Now     func() time.Time

	// ActivePolicy reports the version of the policy in force (0: none).
	ActivePolicy func() int64
	// OnPolicy installs a verified, stored policy; it is called between
	// decisions by the agent's own locking.
	OnPolicy func(p *policy.Policy)
	// OnCommand acts on a display's resolve command; its error is logged.
	OnCommand func(ctx context.Context, c wire.Command) error
	// Status fills the agent's part of the status (policy, links, last
	// decision); the client adds the rest.
	Status func() wire.Status

	// ResendAfter is how long an event may wait for its ack before the
	// outbox is sent again from its oldest entry (default 30s).
	ResendAfter time.Duration
	// StatusEvery is the period of the retained status (default 1m).
	StatusEvery time.Duration
	// Window bounds events published but not yet acknowledged (default 500).
	Window int
}

// Client is a running link to HQ.
type Client struct {
	cfg    Config
	log    *slog.Logger
	client paho.Client
	start  time.Time

	in     *mqttconn.Queue
	kick   chan struct{} // new outbox entries
	status chan struct{} // status changed

	mu          sync.Mutex
	connected   bool
	lastContact time.Time
	refusal     *wire.Refusal
	denyReset   *wire.DenylistReset // last epoch or backwards reset, for status
	reconnected bool                // resend everything unacked
	// factsRestart: publish the facts outbox again from its oldest entry.
	factsRestart bool
	// factsSubscribed: the broker granted the store facts subscription on
	// this connection.
	factsSubscribed bool
	// peersLost: since when the facts link has been down (zero while it
	// is up); the start until it first comes up.
	peersLost time.Time
}

// New prepares a Client; Run connects.
func New(cfg Config) (*Client, error) {
	if cfg.State == nil || cfg.ActivePolicy == nil || cfg.OnPolicy == nil || cfg.Status == nil {
		return nil, errors.New("hqsync: State, ActivePolicy, OnPolicy and Status are required")
	}
	if err := wire.ValidateStore(cfg.Store); err != nil {
		return nil, fmt.Errorf("hqsync: %w", err)
	}
	if err := wire.ValidateRegister(cfg.Register); err != nil {
		return nil, fmt.Errorf("hqsync: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ResendAfter <= 0 {
		cfg.ResendAfter = 30 * time.Second
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = 500
	}
	if cfg.MQTT.Username == "" && cfg.MQTT.CertFile == "" {
		cfg.MQTT.Username = wire.Username(cfg.Store, cfg.Register)
	}
	c := &Client{
		cfg: cfg, log: cfg.Logger, start: cfg.Now(), peersLost: cfg.Now(),
		in: mqttconn.NewQueue(10_000), kick: make(chan struct{}, 1), status: make(chan struct{}, 1),
	}
	will, err := wire.Offline(cfg.Store, cfg.Register, c.version(), cfg.Now().UTC()).Marshal()
	if err != nil {
		return nil, fmt.Errorf("hqsync: last will: %w", err)
	}
	// The handler is installed before connecting: acks, commands and
	// denylist deltas queued in the register's session arrive before the
	// subscriptions are made again.
	opts, err := cfg.MQTT.Options(mqttconn.Client{
		ID: wire.ClientID(cfg.Store, cfg.Register), Handler: func(_ paho.Client, m paho.Message) { c.enqueue(m) },
		OnConnect: c.onConnect, Log: c.log,
		OnLost: func(error) {
			c.mu.Lock()
			if c.factsSubscribed {
				c.peersLost = c.cfg.Now()
			}
			c.connected, c.factsSubscribed = false, false
			c.mu.Unlock()
		},
		Will: &mqttconn.Will{Topic: wire.StatusTopic(cfg.Store, cfg.Register), Payload: will, Retain: true},
	})
	if err != nil {
		return nil, fmt.Errorf("hqsync: %w", err)
	}
	c.client = paho.NewClient(opts)
	return c, nil
}

func (c *Client) version() string {
	if c.cfg.Version == "" {
		return "dev"
	}
	return c.cfg.Version
}

// Kick tells the client the outbox has new events.
func (c *Client) Kick() { signal(c.kick) }

// StatusChanged asks for a status publish soon.
func (c *Client) StatusChanged() { signal(c.status) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Connected reports whether the broker connection is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// LastContact is when HQ was last heard from (an ack, a policy, a denylist
// message); zero if never since start.
func (c *Client) LastContact() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastContact
}

// Refusal is the last refused policy or denylist message, if any.
func (c *Client) Refusal() *wire.Refusal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusal
}

func (c *Client) contact() {
	c.mu.Lock()
	c.lastContact = c.cfg.Now()
	c.mu.Unlock()
}

// enqueue hands a message to the Run goroutine without blocking: paho's
// router is never held by bbolt writes, policy compilation or our own
// publishes. A message dropped from a full queue comes again: acks when
// HQ sees the event again, policy and denylist as retained or resynced.
func (c *Client) enqueue(m paho.Message) { c.in.Push(m) }

func (c *Client) onConnect(pc paho.Client) {
	c.mu.Lock()
	c.connected, c.reconnected, c.factsRestart = true, true, true
	c.mu.Unlock()
	// The store's facts are QoS 1 in the persistent session: the broker
	// queues the peers' facts while this register is away (the QoS of each
	// filter, and why, in wire.AgentSubscriptions).
	filters := wire.AgentSubscriptions(c.cfg.Store, c.cfg.Register)
	factsFilter := wire.FactsFilter(c.cfg.Store)
	tok := pc.SubscribeMultiple(filters, nil) // the default handler takes them
	go func() {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			c.log.Error("subscribe to HQ topics failed", "err", tok.Error())
			return
		}
		if code, ok := tok.(*paho.SubscribeToken).Result()[factsFilter]; ok && code <= 2 {
			c.mu.Lock()
			c.factsSubscribed, c.peersLost = true, time.Time{}
			c.mu.Unlock()
			c.StatusChanged()
		} else {
			c.log.Error("broker refused the store facts subscription: peers' spent tokens and sales are not shared", "filter", factsFilter, "code", code)
		}
	}()
	c.Kick()
	c.StatusChanged()
}

// Run connects (retrying in the background: a register works offline) and
// runs the outbox, the incoming messages and the status until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	c.client.Connect()
	defer func() {
		// A clean shutdown says so: the retained status becomes offline
		// at once rather than when the broker notices.
		if c.Connected() {
			st := c.statusNow()
			st.Online = false
			if b, err := st.Marshal(); err == nil {
				c.client.Publish(wire.StatusTopic(c.cfg.Store, c.cfg.Register), 1, true, b).WaitTimeout(2 * time.Second)
			}
		}
		c.client.Disconnect(500)
	}()
	out := newOutbox(c)
	fx := newFacts(c, ctx)
	statusTick := time.NewTicker(c.cfg.StatusEvery)
	defer statusTick.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// Status changes are coalesced to one publish per tick: an ack burst
	// must not become a status burst.
	statusDue := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.in.Ready():
			for _, m := range c.in.Take(256) {
				c.handle(ctx, m, out)
			}
		case <-c.kick:
			out.send()
			fx.send()
		case seq := <-fx.taken:
			fx.drain(seq)
		case <-c.status:
			statusDue = true
		case <-statusTick.C:
			statusDue = true
		case <-tick.C:
			out.send()
			fx.send()
			if statusDue && c.Connected() {
				c.publishStatus()
				statusDue = false
			}
		}
	}
}

func (c *Client) handle(ctx context.Context, m paho.Message, out *outbox) {
	topic := m.Topic()
	switch {
	case topic == wire.DenylistDelta:
		c.contact()
		c.denylistDelta(m.Payload())
	case topic == wire.DenylistSnapshot:
		c.contact()
		c.denylistSnapshot(m.Payload())
	case topic == wire.AllowlistDelta:
		c.contact()
		c.allowlistDelta(m.Payload()) // allowlist.go
	case topic == wire.AllowlistSnapshot:
		c.contact()
		c.allowlistSnapshot(m.Payload())
	case topic == wire.AckTopic(c.cfg.Store, c.cfg.Register):
		c.contact()
		a, err := wire.ParseAck(m.Payload())
		if err != nil {
			c.log.Warn("bad ack refused", "err", err)
			return
		}
		out.acked(a.IDs)
	case topic == wire.CmdTopic(c.cfg.Store, c.cfg.Register):
		c.command(ctx, topic, m.Payload())
	default:
		if _, _, err := wire.ParseFactsTopic(topic); err == nil {
			c.peerFacts(topic, m.Payload())
			return
		}
		if _, err := wire.ParsePolicyTopic(topic); err == nil {
			c.contact()
			c.policy(m.Payload())
			return
		}
		c.log.Warn("message on an unexpected topic", "topic", topic)
	}
}

func (c *Client) command(ctx context.Context, topic string, payload []byte) {
	cmd, err := wire.ParseCommand(topic, payload)
	if err != nil {
		c.log.Warn("command refused", "err", err)
		return
	}
	if cmd.Type != wire.CmdResolve || c.cfg.OnCommand == nil {
		return // our own resync requests echo back here
	}
	if err := c.cfg.OnCommand(ctx, cmd); err != nil {
		c.log.Warn("command not applied", "cmd", cmd, "err", err)
	}
}

func (c *Client) refuse(subject string, version int64, err error) {
	r := &wire.Refusal{Subject: subject, Reason: string(bundle.ReasonOf(err)), Detail: err.Error(),
		Version: version, At: c.cfg.Now().UTC()}
	if r.Reason == "" {
		r.Reason = "error"
	}
	if len(r.Detail) > 200 {
		r.Detail = r.Detail[:200]
	}
	c.mu.Lock()
	c.refusal = r
	c.mu.Unlock()
	c.log.Warn("HQ message refused; keeping the current one", "subject", subject, "reason", r.Reason, "err", err)
	_, aerr := c.cfg.State.Append(context.Background(), event.Event{Type: event.Refusal, At: r.At,
		Detail: subject + " " + r.Reason + ": " + r.Detail})
	if aerr != nil {
		c.log.Error("record refusal", "err", aerr)
	}
	c.Kick()
	c.StatusChanged()
}

func (c *Client) policy(b []byte) {
	active := c.cfg.ActivePolicy()
	p, err := bundle.VerifyPolicy(b, c.cfg.Trusted, c.cfg.Store, active, c.cfg.Now())
	if err != nil {
		// The retained bundle of the policy already in force comes back on
		// every reconnect: that is no refusal.
		if bundle.ReasonOf(err) == bundle.NotNewer {
			if _, v, aerr := c.cfg.State.ActivePolicy(); aerr == nil && bundleVersion(b, c.cfg.Trusted) == v {
				return
			}
		}
		c.refuse(wire.SubjectPolicy, bundleVersion(b, c.cfg.Trusted), err)
		return
	}
	if err := c.cfg.State.SavePolicy(b, p.Metadata.Version); err != nil {
		c.refuse(wire.SubjectPolicy, p.Metadata.Version, err)
		return
	}
	c.cfg.OnPolicy(p)
	c.log.Info("policy applied", "name", p.Metadata.Name, "version", p.Metadata.Version)
	c.StatusChanged()
}

// bundleVersion reads the version of a bundle for the refusal report; 0
// when it cannot be known. A bundle whose signature fails still names the
// version it claims (bundle.PeekPolicy), so the push's progress at HQ can
// tell which push a bad key or a corrupted bundle broke: the version is
// reported, never trusted.
func bundleVersion(b []byte, trusted []bundle.TrustedKey) int64 {
	payload, _, err := bundle.Verify(b, trusted, bundle.TypePolicy)
	if err != nil {
		if h, perr := bundle.PeekPolicy(b); perr == nil {
			return h.Version
		}
		return 0
	}
	p, err := policy.Load(payload)
	if err != nil {
		return 0
	}
	return p.Metadata.Version
}

func (c *Client) denylistDelta(b []byte) {
	d, err := bundle.VerifyDelta(b, c.cfg.Trusted)
	if err != nil {
		c.refuse(wire.SubjectDenylist, 0, err)
		return
	}
	v := wire.ListVersion{Epoch: d.Epoch, Seq: d.Seq}
	// The list and its details (automatic entries' rule and expiry) in one
	// transaction.
	err = c.cfg.State.ApplyDenylist(d)
	var gap *state.GapError
	switch {
	case errors.As(err, &gap) && gap.Stale():
		return // already have it (redelivery), or older than the list
	case errors.As(err, &gap):
		c.log.Warn("denylist delta does not follow the stored list; asking HQ for a resync",
			"have", c.cfg.State.DenylistVersion(), "got", v, "why", gap.Error())
		c.resync()
		return
	case err != nil:
		c.refuse(wire.SubjectDenylist, int64(d.Seq), err)
		return
	}
	c.log.Info("denylist delta applied", "epoch", d.Epoch, "seq", d.Seq, "added", len(d.Add), "removed", len(d.Remove))
	c.StatusChanged()
}

func (c *Client) denylistSnapshot(b []byte) {
	s, err := bundle.VerifySnapshot(b, c.cfg.Trusted)
	if err != nil {
		c.refuse(wire.SubjectDenylist, 0, err)
		return
	}
	v := wire.ListVersion{Epoch: s.Epoch, Seq: s.Seq}
	if v == c.cfg.State.DenylistVersion() {
		return // the retained snapshot again, on every reconnect
	}
	reset, err := c.cfg.State.ReplaceDenylistSnapshot(s)
	var gap *state.GapError
	switch {
	case errors.As(err, &gap):
		c.log.Info("old denylist snapshot ignored", "have", c.cfg.State.DenylistVersion(), "got", v)
		return
	case err != nil:
		c.refuse(wire.SubjectDenylist, int64(s.Seq), err)
		return
	}
	if reset != nil {
		// HQ's list changed identity (a new store, a restored backup): the
		// register healed from the snapshot, and says so in its status.
		c.log.Warn("denylist replaced from another epoch or an older sequence",
			"why", reset.Why, "from", reset.From, "to", reset.To)
		c.mu.Lock()
		c.denyReset = reset
		c.mu.Unlock()
	}
	c.log.Info("denylist snapshot applied", "epoch", s.Epoch, "seq", s.Seq, "accounts", len(s.Accounts))
	c.StatusChanged()
}

func (c *Client) resync() { c.resyncList("", c.cfg.State.DenylistSeq()) }

// resyncList asks HQ for the snapshot of list ("" for the denylist, which
// HQs from before the allowlist understand).
func (c *Client) resyncList(list string, have uint64) {
	now := c.cfg.Now().UTC()
	cmd := wire.Command{ID: fmt.Sprintf("%s/%s/resync/%d", c.cfg.Store, c.cfg.Register, now.UnixNano()),
		Type: wire.CmdResync, Store: c.cfg.Store, Register: c.cfg.Register, HaveSeq: have, List: list, At: now}
	b, err := cmd.Marshal()
	if err != nil {
		c.log.Error("encode resync", "err", err)
		return
	}
	c.client.Publish(wire.CmdTopic(c.cfg.Store, c.cfg.Register), 1, false, b)
}

func (c *Client) statusNow() wire.Status {
	st := c.cfg.Status()
	now := c.cfg.Now()
	st.Store, st.Register, st.Online, st.Version = c.cfg.Store, c.cfg.Register, true, c.version()
	st.UptimeSec = int64(now.Sub(c.start) / time.Second)
	st.OutboxDepth, _ = c.cfg.State.OutboxStats()
	st.Dropped = int64(c.cfg.State.Dropped())
	dv := c.cfg.State.DenylistVersion()
	st.DenylistSeq, st.DenylistEpoch = dv.Seq, dv.Epoch
	av := c.cfg.State.AllowlistVersion()
	st.AllowlistSeq, st.AllowlistEpoch = av.Seq, av.Epoch
	c.mu.Lock()
	st.DenylistReset = c.denyReset
	c.mu.Unlock()
	st.Refusal = c.Refusal()
	st.Peers = c.peers()
	st.At = now.UTC()
	if st.Links.Scanner == "" {
		st.Links.Scanner = wire.LinkNone
	}
	if st.Links.POS == "" {
		st.Links.POS = wire.LinkNone
	}
	return st
}

func (c *Client) publishStatus() {
	if !c.Connected() {
		return
	}
	b, err := c.statusNow().Marshal()
	if err != nil {
		c.log.Error("encode status", "err", err)
		return
	}
	c.client.Publish(wire.StatusTopic(c.cfg.Store, c.cfg.Register), 1, true, b)
}
