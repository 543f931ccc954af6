package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// Store facts: each decision's facts (spent token, EMV counter, account,
// per-category sums) are kept in bFactsOut by Commit, in the decision's
// own transaction, until the broker has taken them (FactsTaken). Peers'
// facts are applied by ApplyFacts: the token marked seen, the counter
// raised, the sale added to the history, once per fact id.

// factsOf is the facts of a committed sale, less the id the transaction
// assigns; nil when the sale has nothing a peer could use.
func factsOf(req *policy.Request, outcome policy.Outcome, replayKey string, expires time.Time, emv bool, atc uint32, cats []catTotal) *wire.Facts {
	f := &wire.Facts{Store: req.Store, Register: req.Register, At: req.At.UTC(), Outcome: string(outcome), Account: req.Payment.Account}
	if replayKey != "" {
		f.Spent = &wire.Spent{Key: replayKey, Until: expires.UTC()}
	}
	if f.Account != "" {
		if emv {
			f.ATC = &atc
		}
		for _, c := range cats {
			f.Cats = append(f.Cats, wire.FactCat{Cat: c.Cat, Qty: c.Qty, Amount: c.Amount})
		}
	}
	if f.Account == "" && f.Spent == nil {
		return nil
	}
	return f
}

// putFacts stores f under the decision event's seq: one Put in the
// decision transaction.
func putFacts(tx *bolt.Tx, f *wire.Facts, id string, seq uint64) error {
	f.ID = id
	b, err := f.Marshal()
	if err != nil {
		return fmt.Errorf("store facts: %w", err)
	}
	if err := tx.Bucket([]byte(bFactsOut)).Put(eventKey(seq), b); err != nil {
		return fmt.Errorf("store facts: %w", err)
	}
	return nil
}

// OwnFacts is one of this register's facts waiting for the broker.
type OwnFacts struct {
	Seq     uint64
	Payload []byte // wire.Facts JSON
}

// PendingFacts returns up to max of this register's facts with Seq > after,
// oldest first.
func (s *Store) PendingFacts(after uint64, max int) ([]OwnFacts, error) {
	var out []OwnFacts
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(bFactsOut)).Cursor()
			for k, v := c.Seek(eventKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("%w: facts outbox key %x", ErrCorrupt, k)
				}
				out = append(out, OwnFacts{Seq: binary.BigEndian.Uint64(k), Payload: append([]byte(nil), v...)})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read facts outbox of %s: %w", s.path, err)
	}
	return out, nil
}

// FactsTaken removes facts the broker has acknowledged (PUBACK): from there
// the broker delivers them to every peer's session.
func (s *Store) FactsTaken(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := s.write(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bFactsOut))
		for _, seq := range seqs {
			if err := b.Delete(eventKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove %d published facts from %s: %w", len(seqs), s.path, err)
	}
	return nil
}

// FactsBacklog is the number of this register's facts the broker has not
// taken yet.
func (s *Store) FactsBacklog() int {
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte(bFactsOut)).Stats().KeyN
		return nil
	}); err != nil {
		s.log.Error("facts backlog", "err", err)
	}
	return n
}

// LastPeerFact is the time of the newest peer fact applied (zero: none).
func (s *Store) LastPeerFact() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.lastFact == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.lastFact).UTC()
}

// ErrNotPeer: facts of this register itself or of another store.
var ErrNotPeer = errors.New("facts are not from a peer of this register")

// ApplyFacts stores a peer's facts in one transaction: the fact id (so a
// redelivery is a no-op), the spent token marked seen, the EMV counter
// raised, the sale in the history under the peer's register. It reports
// whether the facts were new. Facts older than the retention are ignored:
// their sale is out of every window and their token expired.
func (s *Store) ApplyFacts(f wire.Facts, now time.Time) (bool, error) {
	if err := f.Validate(); err != nil {
		return false, fmt.Errorf("apply facts: %w", err)
	}
	if f.Store != s.opts.Store || f.Register == s.opts.Register {
		return false, fmt.Errorf("apply facts %s: %w", f.ID, ErrNotPeer)
	}
	at := nanos(f.At)
	if at < nanos(now.Add(-s.opts.Retention)) {
		return false, nil
	}
	var (
		sl       *sale
		saleVal  []byte
		seenKey  string
		seenExp  int64
		raiseATC bool
	)
	if f.Account != "" {
		st := storedSale{Account: f.Account, Store: f.Store, Register: f.Register, Outcome: policy.Outcome(f.Outcome)}
		for _, c := range f.Cats {
			st.Cats = append(st.Cats, catTotal{Cat: c.Cat, Qty: c.Qty, Amount: c.Amount})
		}
		var err error
		if saleVal, err = json.Marshal(st); err != nil {
			return false, fmt.Errorf("apply facts %s: %w", f.ID, err)
		}
		sl = &sale{at: at, account: st.Account, counts: st.Outcome != policy.Deny, cats: st.Cats}
	}
	if f.Spent != nil {
		// A peer's mark lives no longer than an own one could: a bogus
		// far-future expiry must not pin the entry for ever.
		seenKey, seenExp = f.Spent.Key, min(nanos(f.Spent.Until), nanos(now.Add(s.opts.Retention)))
	}
	var fresh bool
	err := s.write(func(tx *bolt.Tx) error {
		fresh, raiseATC = false, false
		ids := tx.Bucket([]byte(bPeerFacts))
		if ids.Get([]byte(f.ID)) != nil {
			return nil
		}
		fresh = true
		if err := ids.Put([]byte(f.ID), u64(uint64(at))); err != nil {
			return fmt.Errorf("fact id: %w", err)
		}
		if seenKey != "" {
			seen := tx.Bucket([]byte(bSeen))
			if v := seen.Get([]byte(seenKey)); len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < seenExp {
				if err := seen.Put([]byte(seenKey), u64(uint64(seenExp))); err != nil {
					return fmt.Errorf("mark token: %w", err)
				}
			}
		}
		if f.ATC != nil {
			atcB := tx.Bucket([]byte(bATC))
			if v := atcB.Get([]byte(f.Account)); len(v) != 12 || binary.BigEndian.Uint32(v) < *f.ATC {
				v := make([]byte, 12)
				binary.BigEndian.PutUint32(v, *f.ATC)
				binary.BigEndian.PutUint64(v[4:], uint64(at))
				if err := atcB.Put([]byte(f.Account), v); err != nil {
					return fmt.Errorf("raise ATC: %w", err)
				}
				raiseATC = true
			}
		}
		if sl != nil {
			ph := tx.Bucket([]byte(bPeerHistory))
			n, err := ph.NextSequence()
			if err != nil {
				return fmt.Errorf("peer history sequence: %w", err)
			}
			if err := ph.Put(historyKey(at, n), saleVal); err != nil {
				return fmt.Errorf("peer history: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("apply facts %s to %s: %w", f.ID, s.path, err)
	}
	if !fresh {
		return false, nil
	}
	s.mu.Lock()
	if seenKey != "" && s.seen[seenKey] < seenExp {
		s.seen[seenKey] = seenExp
	}
	if raiseATC {
		s.atc[f.Account] = *f.ATC
	}
	if sl != nil {
		s.hist.add(sl, f.Store, f.Register)
	}
	s.lastFact = max(s.lastFact, at)
	s.mu.Unlock()
	return true, nil
}

// loadPeers adds the peers' sales to the history index and finds the
// newest peer fact.
func (s *Store) loadPeers(tx *bolt.Tx) error {
	err := tx.Bucket([]byte(bPeerHistory)).ForEach(func(k, v []byte) error {
		sl, store, register, err := decodeSale(k, v)
		if err != nil {
			return fmt.Errorf("%w: peer history %x: %w", ErrCorrupt, k, err)
		}
		s.hist.add(sl, store, register)
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bPeerFacts)).ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: peer fact %q: bad time", ErrCorrupt, k)
		}
		s.lastFact = max(s.lastFact, int64(binary.BigEndian.Uint64(v)))
		return nil
	})
}

// pruneFacts deletes peers' sales and fact ids older than cutoff, and own
// facts the broker never took that are older too: no window reaches them.
func pruneFacts(tx *bolt.Tx, cutoff int64) (int, error) {
	n := 0
	var del [][]byte
	ph := tx.Bucket([]byte(bPeerHistory))
	c := ph.Cursor()
	for k, _ := c.First(); k != nil && len(k) == 16 && historyKeyTime(k) < cutoff; k, _ = c.Next() {
		del = append(del, append([]byte(nil), k...))
	}
	for _, k := range del {
		if err := ph.Delete(k); err != nil {
			return n, fmt.Errorf("peer history: %w", err)
		}
	}
	n += len(del)
	for _, bucket := range []string{bPeerFacts, bFactsOut} {
		b := tx.Bucket([]byte(bucket))
		del = del[:0]
		err := b.ForEach(func(k, v []byte) error {
			if factTime(bucket, v) < cutoff {
				del = append(del, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("%s: %w", bucket, err)
		}
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return n, fmt.Errorf("%s: %w", bucket, err)
			}
		}
		n += len(del)
	}
	return n, nil
}

// factTime is the time of an entry of bPeerFacts (8 bytes) or bFactsOut
// (the facts JSON); an unreadable entry is as old as can be, so it goes.
func factTime(bucket string, v []byte) int64 {
	if bucket == bPeerFacts {
		if len(v) != 8 {
			return minTime
		}
		return int64(binary.BigEndian.Uint64(v))
	}
	var head struct {
		At time.Time `json:"at"`
	}
	if json.Unmarshal(v, &head) != nil {
		return minTime
	}
	return nanos(head.At)
}

const minTime = -1 << 63
