package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// paymentEMV is policy.Payment.Kind of an EMV CPM token.
const paymentEMV = "emv-cpm"

// Record is one decided sale to make durable.
type Record struct {
	Request  *policy.Request
	Decision *policy.Decision
	// ReplayKey is the token's one-time id (PG1 cti, EMV account+ATC,
	// opaque text); empty for a token that has none or failed
	// verification, which is then not marked.
	ReplayKey string
	// ReplayExpires is when the mark may be pruned, normally the token's
	// expiry; zero means Request.At plus the retention.
	ReplayExpires time.Time
	// Review, when set, is the hold stored in the same transaction so a
	// restart cannot lose a held token.
	Review *Review
	// Idempotent, when set, stores the caller's answer under its retry key
	// in the same transaction. If the key is already stored, nothing is
	// written and Commit returns ErrIdempotent.
	Idempotent *Idempotent
	Detail     string
}

// Commit makes one decision durable in a single transaction: the replay
// mark, the EMV ATC, the sale in the history, the review hold, the decision
// event, (for review and deny) an alert event and, with ShareFacts, the
// sale's facts for the store's other registers. The agent must not tell the
// POS anything before Commit returns nil. Replay is checked again inside the
// transaction: of two commits of one token, exactly one succeeds, the other
// gets ErrReplayed. When ctx has ended before the transaction takes the
// write lock, nothing is written and the error wraps ctx.Err(). It
// returns the decision event.
func (s *Store) Commit(ctx context.Context, rec Record) (event.Event, error) {
	if rec.Request == nil || rec.Decision == nil {
		return event.Event{}, errors.New("commit: request and decision are required")
	}
	req := rec.Request
	if err := ctx.Err(); err != nil {
		return event.Event{}, fmt.Errorf("commit sale %s: %w", req.SaleID, err)
	}
	expires := rec.ReplayExpires
	if expires.IsZero() {
		expires = req.At.Add(s.opts.Retention)
	}
	var atc uint32
	emv := req.Payment.Kind == paymentEMV && req.Payment.Invalid == "" && req.Payment.Account != ""
	if emv {
		if req.Payment.ATC < 0 || int64(req.Payment.ATC) > math.MaxUint32 { // int is 32 bits on arm and 386
			return event.Event{}, fmt.Errorf("commit sale %s: EMV ATC %d out of range", req.SaleID, req.Payment.ATC)
		}
		atc = uint32(req.Payment.ATC)
	}
	if rec.Idempotent != nil {
		if err := rec.Idempotent.validate(); err != nil {
			return event.Event{}, fmt.Errorf("commit sale %s: %w", req.SaleID, err)
		}
	}
	var reviewVal []byte
	if rec.Review != nil {
		if err := rec.Review.validate(); err != nil {
			return event.Event{}, fmt.Errorf("commit sale %s: %w", req.SaleID, err)
		}
		var err error
		if reviewVal, err = json.Marshal(rec.Review); err != nil {
			return event.Event{}, fmt.Errorf("commit sale %s: encode review: %w", req.SaleID, err)
		}
	}
	// Check the event before the transaction, so a bad record fails alone
	// instead of making Batch roll back and retry everyone else's commits.
	proto := event.Event{Type: event.Decision, At: req.At, SaleID: req.SaleID, Request: req, Decision: rec.Decision}
	if err := s.checkEvent(proto); err != nil {
		return event.Event{}, fmt.Errorf("commit sale %s: %w", req.SaleID, err)
	}
	sl, stored := saleFromRequest(req, rec.Decision.Outcome)
	saleVal, err := json.Marshal(stored)
	if err != nil {
		return event.Event{}, fmt.Errorf("commit sale %s: encode history: %w", req.SaleID, err)
	}
	var facts *wire.Facts
	if s.opts.ShareFacts {
		facts = factsOf(req, rec.Decision.Outcome, rec.ReplayKey, expires, emv, atc, stored.Cats)
	}
	if facts != nil {
		facts.Store, facts.Register, facts.ID = s.opts.Store, s.opts.Register, s.prefix+"1"
		if err := facts.Validate(); err != nil {
			// The sale is decided all the same: facts that cannot be
			// shared (a catalog category past the wire's bounds) must
			// not refuse a customer.
			s.log.Error("sale's facts cannot be shared with the store", "sale", req.SaleID, "err", err)
			facts = nil
		}
	}

	// Batch may run fn more than once (when another call in the batch
	// fails), so fn only sets these, never accumulates.
	var (
		ev         event.Event
		replayed   bool
		idemExists bool
		abandoned  bool
	)
	fn := func(tx *bolt.Tx) error {
		replayed, idemExists, abandoned = false, false, false
		// Checked again here, where the write lock is held: the wait for
		// it is where a caller gives up, and a decision nobody hears
		// must not be made (an allow would use the token for nothing).
		if ctx.Err() != nil {
			abandoned = true
			return nil
		}
		// The key first: a retry racing its original must get the
		// original's answer, not be decided again as a replayed token.
		if i := rec.Idempotent; i != nil {
			if v := tx.Bucket([]byte(bIdem)).Get([]byte(i.Key)); v != nil && !answerExpired(v, req.At) {
				idemExists = true
				return nil
			}
		}
		if rec.ReplayKey != "" && tx.Bucket([]byte(bSeen)).Get([]byte(rec.ReplayKey)) != nil {
			replayed = true
			return nil // no writes; does not disturb the other calls of the batch
		}
		atcB := tx.Bucket([]byte(bATC))
		if emv {
			if v := atcB.Get([]byte(req.Payment.Account)); len(v) == 12 && binary.BigEndian.Uint32(v) >= atc {
				replayed = true
				return nil
			}
		}
		if rec.ReplayKey != "" {
			if err := tx.Bucket([]byte(bSeen)).Put([]byte(rec.ReplayKey), u64(uint64(nanos(expires)))); err != nil {
				return fmt.Errorf("mark token: %w", err)
			}
		}
		if emv {
			v := make([]byte, 12)
			binary.BigEndian.PutUint32(v, atc)
			binary.BigEndian.PutUint64(v[4:], uint64(nanos(req.At)))
			if err := atcB.Put([]byte(req.Payment.Account), v); err != nil {
				return fmt.Errorf("store ATC: %w", err)
			}
		}
		ev = event.Event{
			Type: event.Decision, At: req.At, SaleID: req.SaleID,
			Request: req, Decision: rec.Decision, Detail: rec.Detail,
		}
		if err := s.appendEvent(tx, &ev); err != nil {
			return err
		}
		if rec.Decision.Outcome == policy.Review || rec.Decision.Outcome == policy.Deny {
			alert := ev
			alert.Type = event.Alert
			if err := s.appendEvent(tx, &alert); err != nil {
				return err
			}
		}
		if facts != nil {
			if err := putFacts(tx, facts, ev.ID, ev.Seq); err != nil {
				return err
			}
		}
		if sl.account != "" {
			if err := tx.Bucket([]byte(bHistory)).Put(historyKey(sl.at, ev.Seq), saleVal); err != nil {
				return fmt.Errorf("store history: %w", err)
			}
		}
		if rec.Review != nil {
			if err := tx.Bucket([]byte(bReviews)).Put([]byte(rec.Review.ID), reviewVal); err != nil {
				return fmt.Errorf("store review: %w", err)
			}
		}
		if rec.Idempotent != nil {
			if err := putAnswer(tx, rec.Idempotent, ev.ID); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.write(fn); err != nil {
		s.log.Error("commit failed", "sale", req.SaleID, "err", err)
		return event.Event{}, fmt.Errorf("commit sale %s to %s: %w", req.SaleID, s.path, err)
	}
	if abandoned {
		return event.Event{}, fmt.Errorf("commit sale %s: %w", req.SaleID, ctx.Err())
	}
	if idemExists {
		return event.Event{}, fmt.Errorf("commit sale %s: %w", req.SaleID, ErrIdempotent)
	}
	if replayed {
		return event.Event{}, fmt.Errorf("commit sale %s: %w", req.SaleID, ErrReplayed)
	}
	s.mu.Lock()
	if rec.ReplayKey != "" {
		s.seen[rec.ReplayKey] = nanos(expires)
	}
	if emv {
		s.atc[req.Payment.Account] = atc
	}
	if sl.account != "" {
		s.hist.add(sl, stored.Store, stored.Register)
	}
	s.mu.Unlock()
	return ev, nil
}

// Append adds an event that is not a sale decision (a resolution, a
// refusal) to the outbox, assigning its ID, Seq, Store and Register.
func (s *Store) Append(ctx context.Context, ev event.Event) (event.Event, error) {
	if err := ctx.Err(); err != nil {
		return event.Event{}, fmt.Errorf("append %s event: %w", ev.Type, err)
	}
	if err := s.checkEvent(ev); err != nil {
		return event.Event{}, fmt.Errorf("append %s event: %w", ev.Type, err)
	}
	var out event.Event
	err := s.write(func(tx *bolt.Tx) error {
		out = ev
		return s.appendEvent(tx, &out)
	})
	if err != nil {
		return event.Event{}, fmt.Errorf("append %s event to %s: %w", ev.Type, s.path, err)
	}
	return out, nil
}

// checkEvent validates ev as it will be once appendEvent has numbered it.
func (s *Store) checkEvent(ev event.Event) error {
	ev.Seq = 1
	ev.ID = s.prefix + "1"
	ev.Store, ev.Register = s.opts.Store, s.opts.Register
	return ev.Validate()
}

// appendEvent numbers ev, stores it and enforces the outbox cap: while the
// outbox is over the cap the oldest non-alert event is dropped and counted.
// Alerts are never dropped, so an outbox of alerts only may exceed the cap.
func (s *Store) appendEvent(tx *bolt.Tx, ev *event.Event) error {
	out := tx.Bucket([]byte(bOutbox))
	seq, err := out.NextSequence()
	if err != nil {
		return fmt.Errorf("outbox sequence: %w", err)
	}
	ev.Seq = seq
	ev.ID = s.prefix + strconv.FormatUint(seq, 10)
	ev.Store, ev.Register = s.opts.Store, s.opts.Register
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("outbox event: %w", err)
	}
	b, err := event.Marshal(*ev)
	if err != nil {
		return err
	}
	if len(b) > event.MaxSize {
		return fmt.Errorf("outbox event %s: %d bytes exceeds %d", ev.ID, len(b), event.MaxSize)
	}
	key := eventKey(seq)
	if err := out.Put(key, b); err != nil {
		return fmt.Errorf("outbox put: %w", err)
	}
	droppable := tx.Bucket([]byte(bDroppable))
	if ev.Type != event.Alert {
		if err := droppable.Put(key, nil); err != nil {
			return fmt.Errorf("outbox index: %w", err)
		}
	}
	meta := tx.Bucket([]byte(bMeta))
	depth := getU64(meta, kDepth) + 1
	dropped := getU64(meta, kDropped)
	for depth > uint64(s.opts.OutboxCap) {
		k, _ := droppable.Cursor().First()
		if k == nil {
			break
		}
		k = append([]byte(nil), k...)
		if err := out.Delete(k); err != nil {
			return fmt.Errorf("outbox drop: %w", err)
		}
		if err := droppable.Delete(k); err != nil {
			return fmt.Errorf("outbox drop: %w", err)
		}
		depth--
		dropped++
		s.log.Warn("outbox full: dropped oldest event", "seq", binary.BigEndian.Uint64(k), "cap", s.opts.OutboxCap)
	}
	if err := meta.Put([]byte(kDepth), u64(depth)); err != nil {
		return err
	}
	return meta.Put([]byte(kDropped), u64(dropped))
}

// Pending returns up to max outbox events with Seq > after, in order.
func (s *Store) Pending(after uint64, max int) ([]event.Event, error) {
	var evs []event.Event
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(bOutbox)).Cursor()
			for k, v := c.Seek(eventKey(after + 1)); k != nil && len(evs) < max; k, v = c.Next() {
				ev, err := event.Parse(v)
				if err != nil {
					return fmt.Errorf("%w: outbox entry %x: %w", ErrCorrupt, k, err)
				}
				evs = append(evs, ev)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox of %s: %w", s.path, err)
	}
	return evs, nil
}

// Ack removes acknowledged events. Ids that are unknown, already removed or
// from another register are ignored, so a repeated ack is harmless.
func (s *Store) Ack(ids ...string) error {
	var keys [][]byte
	for _, id := range ids {
		if seq, ok := s.ownSeq(id); ok {
			keys = append(keys, eventKey(seq))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	err := s.write(func(tx *bolt.Tx) error {
		out := tx.Bucket([]byte(bOutbox))
		droppable := tx.Bucket([]byte(bDroppable))
		meta := tx.Bucket([]byte(bMeta))
		depth := getU64(meta, kDepth)
		for _, k := range keys {
			if out.Get(k) == nil {
				continue
			}
			if err := out.Delete(k); err != nil {
				return err
			}
			if err := droppable.Delete(k); err != nil {
				return err
			}
			if depth > 0 {
				depth--
			}
		}
		return meta.Put([]byte(kDepth), u64(depth))
	})
	if err != nil {
		return fmt.Errorf("ack %d events in %s: %w", len(keys), s.path, err)
	}
	return nil
}

// OutboxStats reports the number of unacknowledged events and the time of
// the oldest (zero when empty).
func (s *Store) OutboxStats() (depth int, oldest time.Time) {
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			depth = int(getU64(tx.Bucket([]byte(bMeta)), kDepth))
			_, v := tx.Bucket([]byte(bOutbox)).Cursor().First()
			if v == nil {
				return nil
			}
			var head struct {
				At time.Time `json:"at"`
			}
			if err := json.Unmarshal(v, &head); err != nil {
				return err
			}
			oldest = head.At
			return nil
		})
	})
	if err != nil {
		s.log.Error("outbox stats", "err", err)
	}
	return depth, oldest
}

// Dropped is how many events the outbox cap has dropped over the life of
// the file.
func (s *Store) Dropped() uint64 {
	var n uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		n = getU64(tx.Bucket([]byte(bMeta)), kDropped)
		return nil
	}); err != nil {
		s.log.Error("outbox dropped count", "err", err)
	}
	return n
}
