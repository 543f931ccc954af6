package state

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Prune deletes seen-token marks and idempotency keys that expired before
// now, and history (own and peers'), EMV counters, peers' fact ids, own
// facts the broker never took and resolved reviews older than the
// retention. The outbox is not pruned: only Ack and the cap remove events.
// It returns how many entries were deleted.
func (s *Store) Prune(now time.Time) (int, error) {
	nowNS := nanos(now)
	cutoff := nanos(now.Add(-s.opts.Retention))
	var seenKeys, atcKeys [][]byte
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		seenKeys, atcKeys, n = nil, nil, 0
		var del [][]byte
		collect := func(b *bolt.Bucket, old func(k, v []byte) bool) ([][]byte, error) {
			var keys [][]byte
			err := b.ForEach(func(k, v []byte) error {
				if old(k, v) {
					keys = append(keys, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return nil, err
				}
			}
			n += len(keys)
			return keys, nil
		}
		var err error
		if seenKeys, err = collect(tx.Bucket([]byte(bSeen)), func(_, v []byte) bool {
			return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < nowNS
		}); err != nil {
			return fmt.Errorf("seen tokens: %w", err)
		}
		if atcKeys, err = collect(tx.Bucket([]byte(bATC)), func(_, v []byte) bool {
			return len(v) == 12 && int64(binary.BigEndian.Uint64(v[4:])) < cutoff
		}); err != nil {
			return fmt.Errorf("EMV counters: %w", err)
		}
		// History keys start with the time: stop at the first recent one.
		hb := tx.Bucket([]byte(bHistory))
		c := hb.Cursor()
		for k, _ := c.First(); k != nil && len(k) == 16 && historyKeyTime(k) < cutoff; k, _ = c.Next() {
			del = append(del, append([]byte(nil), k...))
		}
		for _, k := range del {
			if err := hb.Delete(k); err != nil {
				return fmt.Errorf("history: %w", err)
			}
		}
		n += len(del)
		if _, err = collect(tx.Bucket([]byte(bReviews)), func(_, v []byte) bool {
			var r Review
			return decodeReview(v, &r) == nil && r.Resolution != nil && nanos(r.Resolution.At) < cutoff
		}); err != nil {
			return fmt.Errorf("reviews: %w", err)
		}
		if _, err = collect(tx.Bucket([]byte(bIdem)), func(_, v []byte) bool {
			return answerExpired(v, now)
		}); err != nil {
			return fmt.Errorf("idempotency keys: %w", err)
		}
		pruned, err := pruneFacts(tx, cutoff)
		n += pruned
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune %s: %w", s.path, err)
	}
	s.mu.Lock()
	for _, k := range seenKeys {
		delete(s.seen, string(k))
	}
	for _, k := range atcKeys {
		delete(s.atc, string(k))
	}
	s.hist.prune(cutoff)
	s.mu.Unlock()
	return n, nil
}
