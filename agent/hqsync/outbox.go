package hqsync

import (
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// outbox publishes the state file's outbox in order, at most Window events
// ahead of HQ's acks. It runs only on the Run goroutine.
type outbox struct {
	c        *Client
	after    uint64               // highest seq published since the last (re)start
	inflight map[string]time.Time // id → first published, this round
}

func newOutbox(c *Client) *outbox {
	return &outbox{c: c, inflight: make(map[string]time.Time)}
}

// send publishes what is pending. After a reconnect, or when the oldest
// unacknowledged event has waited ResendAfter, it starts again from the
// oldest entry: HQ de-duplicates, and an ack lost anywhere is recovered.
func (o *outbox) send() {
	c := o.c
	if !c.Connected() {
		return
	}
	// The wall clock, not cfg.Now: resending is transport timing, and a
	// clock that is set back (or a test's fixed one) must not stop it.
	now := time.Now()
	if restartDue(c, &c.reconnected, o.inflight, now) {
		o.after = 0
		clear(o.inflight)
	}
	for len(o.inflight) < c.cfg.Window {
		evs, err := c.cfg.State.Pending(o.after, c.cfg.Window-len(o.inflight))
		if err != nil {
			c.log.Error("read outbox", "err", err)
			return
		}
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			if err := o.publish(ev); err != nil {
				c.log.Warn("publish event", "id", ev.ID, "err", err)
				return
			}
			o.after = ev.Seq
			o.inflight[ev.ID] = now
		}
	}
}

func (o *outbox) publish(ev event.Event) error {
	c := o.c
	b, err := event.Marshal(ev)
	if err != nil {
		return err
	}
	topic := wire.EventsTopic(c.cfg.Store, c.cfg.Register)
	if ev.Type == event.Alert || ev.Type == event.Resolution || (ev.Type == event.Refusal && ev.Resolution != nil) {
		// Displays subscribe to alerts only; they need resolutions too to
		// unpin a review, and refused resolutions (wrong PIN, rate limit)
		// to say so. Policy and denylist refusals stay on events.
		topic = wire.AlertsTopic(c.cfg.Store, c.cfg.Register)
	}
	// Not waited for: paho keeps QoS 1 publishes in order on the wire, and
	// the ack from HQ, not the broker's PUBACK, is what removes the event.
	c.client.Publish(topic, 1, false, b)
	return nil
}

// acked removes acknowledged events from the state file and the window.
func (o *outbox) acked(ids []string) {
	if err := o.c.cfg.State.Ack(ids...); err != nil {
		o.c.log.Error("remove acked events", "err", err)
		return
	}
	for _, id := range ids {
		delete(o.inflight, id)
	}
	o.send()
	o.c.StatusChanged()
}

// restartDue reports whether a sender must start again from its oldest
// entry: *reconnected was set by a reconnect (and is cleared), or an entry
// in flight has waited ResendAfter for its acknowledgement.
func restartDue[K comparable](c *Client, reconnected *bool, inflight map[K]time.Time, now time.Time) bool {
	c.mu.Lock()
	restart := *reconnected
	*reconnected = false
	c.mu.Unlock()
	for _, sent := range inflight {
		if now.Sub(sent) >= c.cfg.ResendAfter {
			return true
		}
	}
	return restart
}
