package hqsync

import (
	"context"
	"errors"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/wire"
)

// facts publishes this register's store facts and applies its peers'. A
// fact leaves the state file when the broker acknowledges its publish
// (PUBACK): from then the broker holds it for every peer's persistent
// session, and no HQ acknowledgement is needed. It runs on the Run
// goroutine, but for the PUBACK waiters, which only report seqs on taken.
type facts struct {
	c        *Client
	after    uint64               // highest seq published since the last (re)start
	inflight map[uint64]time.Time // seq → published, not yet acknowledged
	taken    chan uint64
	done     <-chan struct{}
}

func newFacts(c *Client, ctx context.Context) *facts {
	return &facts{c: c, inflight: make(map[uint64]time.Time), taken: make(chan uint64, 1024), done: ctx.Done()}
}

// send publishes the pending facts, at most Window unacknowledged. After a
// reconnect, or when a publish has waited ResendAfter for its PUBACK, it
// starts again from the oldest: peers de-duplicate by id.
func (f *facts) send() {
	c := f.c
	if !c.Connected() {
		return
	}
	now := time.Now() // transport timing: the wall clock, as the event outbox
	if restartDue(c, &c.factsRestart, f.inflight, now) {
		f.after = 0
		clear(f.inflight)
	}
	topic := wire.FactsTopic(c.cfg.Store, c.cfg.Register)
	for len(f.inflight) < c.cfg.Window {
		own, err := c.cfg.State.PendingFacts(f.after, c.cfg.Window-len(f.inflight))
		if err != nil {
			c.log.Error("read facts outbox", "err", err)
			return
		}
		if len(own) == 0 {
			return
		}
		for _, o := range own {
			tok := c.client.Publish(topic, 1, false, o.Payload)
			f.after = o.Seq
			f.inflight[o.Seq] = now
			go f.await(tok, o.Seq)
		}
	}
}

// await reports seq on taken once the broker has acknowledged it.
func (f *facts) await(tok paho.Token, seq uint64) {
	select {
	case <-tok.Done():
	case <-f.done:
		return
	}
	if tok.Error() != nil {
		return // sent again after the reconnect or ResendAfter
	}
	select {
	case f.taken <- seq:
	case <-f.done:
	}
}

// drain removes the acknowledged facts from the state file, as one write.
func (f *facts) drain(first uint64) {
	seqs := []uint64{first}
	for len(seqs) < 1024 {
		select {
		case s := <-f.taken:
			seqs = append(seqs, s)
			continue
		default:
		}
		break
	}
	if err := f.c.cfg.State.FactsTaken(seqs...); err != nil {
		f.c.log.Error("remove published facts", "err", err)
		return
	}
	for _, s := range seqs {
		delete(f.inflight, s)
	}
	f.send()
}

// peerFacts applies a peer's facts. Own facts come back on the store filter
// and are skipped before parsing; anything that does not parse, claims
// another register than its topic or another store is logged and dropped.
func (c *Client) peerFacts(topic string, payload []byte) {
	if topic == wire.FactsTopic(c.cfg.Store, c.cfg.Register) {
		return
	}
	f, err := wire.ParseFacts(topic, payload)
	if err != nil {
		c.log.Warn("peer facts refused", "topic", topic, "err", err)
		return
	}
	fresh, err := c.cfg.State.ApplyFacts(f, c.cfg.Now())
	switch {
	case errors.Is(err, state.ErrNotPeer):
		c.log.Warn("facts of another store refused", "id", f.ID, "topic", topic)
	case err != nil:
		// The broker has delivered it and will not again: the fact is
		// lost to this register. Said loudly; the store's other tills
		// still refuse the token.
		c.log.Error("peer facts not stored", "id", f.ID, "err", err)
	case fresh:
		c.StatusChanged()
	}
}

// peers is the status of the store facts link.
func (c *Client) peers() *wire.Peers {
	c.mu.Lock()
	reachable := c.connected && c.factsSubscribed
	c.mu.Unlock()
	return &wire.Peers{Reachable: reachable, LastFactAt: c.cfg.State.LastPeerFact(), Pending: c.cfg.State.FactsBacklog()}
}

// Peers reports the store facts link for the agent's own status.
func (c *Client) Peers() *wire.Peers { return c.peers() }

// PeersLost is since when the store facts link has been down: the start
// if it never came up, zero while it is up.
func (c *Client) PeersLost() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peersLost
}
