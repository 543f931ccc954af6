package hq

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

// The fleet view must never contradict the registers' retained status,
// which is what `policy push` watches: storing a status waits behind the
// ingest queue and the database, so HQ also keeps the latest status of
// each register as its connection delivers it, and /v1/fleet lays that
// over the stored view. Before reading, /v1/fleet subscribes to the status
// topics again, which makes the broker send every retained status as it
// holds it now (a broker stores a retained message before passing it on,
// so anything push has seen is there), then publishes a token to itself:
// the broker answers one connection's packets in order and paho delivers
// in order, so once the token is back every retained status has been
// observed.

// syncPrefix + a random instance id is the topic HQ publishes to itself.
const syncPrefix = wire.Prefix + "/hq/sync/"

// policyPrefix starts the policy topics (wire.PolicyTopic), which HQ reads
// for the rollout view.
var policyPrefix = wire.PolicyTopic("")

// syncWait bounds the round trip; past it the view is served as it is.
const syncWait = 2 * time.Second

type liveFleet struct {
	topic string

	mu      sync.Mutex
	regs    map[string]store.Register // store/register → latest status seen live
	raw     map[string][]byte         // store/register → its payload, to spot re-deliveries
	waiting map[string]chan struct{}  // sync token → closed when it came back

	// The console's live view (fleet_http.go): the policies retained on
	// the policy topics, and a stream of every status once stored.
	policies *pushed
	hub      *sse.Hub
	log      *slog.Logger
	done     chan struct{} // closed when HQ stops: ends the streams
	stopOnce sync.Once
}

func newLiveFleet(log *slog.Logger) *liveFleet {
	b := make([]byte, 8)
	rand.Read(b)
	return &liveFleet{topic: syncPrefix + hex.EncodeToString(b),
		regs: make(map[string]store.Register), raw: make(map[string][]byte), waiting: make(map[string]chan struct{}),
		policies: newPushed(), hub: sse.NewHub(streamQueue), log: log, done: make(chan struct{})}
}

// observe is called by paho's router for every message, in order, before
// the message is queued for storing. It must not block. It reports
// whether the message needs no storing: a sync token, or a retained status
// delivered again, byte for byte, by a resubscription.
func (l *liveFleet) observe(m paho.Message, now time.Time) (skip bool) {
	if m.Topic() == l.topic {
		l.mu.Lock()
		if ch, ok := l.waiting[string(m.Payload())]; ok {
			close(ch)
			delete(l.waiting, string(m.Payload()))
		}
		l.mu.Unlock()
		return true
	}
	if strings.HasPrefix(m.Topic(), policyPrefix) {
		if scope, err := wire.ParsePolicyTopic(m.Topic()); err == nil {
			l.policyChanged(scope, m.Payload(), now) // fleet_http.go
		}
		return true // nothing to store
	}
	storeID, reg, kind, err := wire.ParseRegTopic(m.Topic())
	if err != nil || kind != wire.KindStatus {
		return false
	}
	k := storeID + "/" + reg
	l.mu.Lock()
	same := bytes.Equal(l.raw[k], m.Payload())
	l.mu.Unlock()
	if same {
		return true
	}
	st, err := wire.ParseStatus(m.Payload())
	if err != nil || st.Store != storeID || st.Register != reg {
		return false // ingest refuses and counts it
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.regs[k]; ok && st.At.Before(old.Status.At) {
		return false // an older one late; the store keeps the newest too
	}
	l.regs[k] = store.Register{Store: storeID, Register: reg, Status: st, LastSeen: now}
	l.raw[k] = bytes.Clone(m.Payload())
	return false
}

// sync returns once every status the broker retains now has been
// observed, or after syncWait, or at once when disconnected. handler is
// HQ's message handler, which calls observe.
func (l *liveFleet) sync(ctx context.Context, c paho.Client, handler paho.MessageHandler) {
	if !c.IsConnectionOpen() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	if mqttconn.Wait(ctx, c.Subscribe(wire.HQStatusFilter, 1, handler)) != nil {
		return
	}
	b := make([]byte, 8)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	ch := make(chan struct{})
	l.mu.Lock()
	l.waiting[tok] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.waiting, tok)
		l.mu.Unlock()
	}()
	c.Publish(l.topic, 1, false, tok)
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// overlay lays the live statuses over the stored fleet: a live status wins
// unless the store holds a newer one (another HQ instance stored it).
func (l *liveFleet) overlay(regs []store.Register) []store.Register {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := make(map[string]bool, len(regs))
	for i, r := range regs {
		k := r.Store + "/" + r.Register
		seen[k] = true
		if live, ok := l.regs[k]; ok && !live.Status.At.Before(r.Status.At) {
			regs[i] = live
		}
	}
	for k, live := range l.regs {
		if !seen[k] {
			regs = append(regs, live)
		}
	}
	sort.Slice(regs, func(i, j int) bool {
		if regs[i].Store != regs[j].Store {
			return regs[i].Store < regs[j].Store
		}
		return regs[i].Register < regs[j].Register
	})
	return regs
}
