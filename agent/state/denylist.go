package state

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// GapError refuses a denylist message whose sequence number does not follow
// the stored one. Stale() tells a duplicate or old message (ignore it) from
// a gap (ask HQ for a resync).
type GapError struct {
	Current, Got uint64
}

func (e *GapError) Error() string {
	if e.Stale() {
		return fmt.Sprintf("denylist sequence %d refused: already at %d", e.Got, e.Current)
	}
	return fmt.Sprintf("denylist sequence gap: at %d, got %d", e.Current, e.Got)
}

// Stale reports whether the refused message is not newer than the stored list.
func (e *GapError) Stale() bool { return e.Got <= e.Current }

// ApplyDenylistDelta applies delta seq, which must be the stored sequence
// plus one.
func (s *Store) ApplyDenylistDelta(seq uint64, add, remove []string) error {
	if err := nonEmpty(add, remove); err != nil {
		return fmt.Errorf("denylist delta %d: %w", seq, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bMeta))
		if cur := getU64(meta, kDenySeq); seq != cur+1 {
			return &GapError{Current: cur, Got: seq}
		}
		db := tx.Bucket([]byte(bDeny))
		for _, a := range add {
			if err := db.Put([]byte(a), nil); err != nil {
				return err
			}
		}
		for _, a := range remove {
			if err := db.Delete([]byte(a)); err != nil {
				return err
			}
		}
		return meta.Put([]byte(kDenySeq), u64(seq))
	})
	if err != nil {
		return fmt.Errorf("denylist delta %d in %s: %w", seq, s.path, err)
	}
	s.mu.Lock()
	for _, a := range add {
		s.deny[a] = struct{}{}
	}
	for _, a := range remove {
		delete(s.deny, a)
	}
	s.denySeq = seq
	s.mu.Unlock()
	return nil
}

// ReplaceDenylist replaces the whole list with a snapshot at seq. A snapshot
// older than the stored sequence is refused with a GapError; the same
// sequence again is accepted (the retained snapshot is re-delivered on every
// reconnect).
func (s *Store) ReplaceDenylist(seq uint64, accounts []string) error {
	if err := nonEmpty(accounts); err != nil {
		return fmt.Errorf("denylist snapshot %d: %w", seq, err)
	}
	// Sorted inserts let bbolt fill pages densely and sequentially.
	sorted := slices.Clone(accounts)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bMeta))
		if cur := getU64(meta, kDenySeq); seq < cur {
			return &GapError{Current: cur, Got: seq}
		}
		if err := tx.DeleteBucket([]byte(bDeny)); err != nil {
			return err
		}
		db, err := tx.CreateBucket([]byte(bDeny))
		if err != nil {
			return err
		}
		db.FillPercent = 1
		for _, a := range sorted {
			if err := db.Put([]byte(a), nil); err != nil {
				return err
			}
		}
		return meta.Put([]byte(kDenySeq), u64(seq))
	})
	if err != nil {
		return fmt.Errorf("denylist snapshot %d in %s: %w", seq, s.path, err)
	}
	set := make(map[string]struct{}, len(sorted))
	for _, a := range sorted {
		set[a] = struct{}{}
	}
	s.mu.Lock()
	s.deny, s.denySeq = set, seq
	s.mu.Unlock()
	return nil
}

// DenylistSeq is the sequence number of the stored denylist (0: none yet).
func (s *Store) DenylistSeq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.denySeq
}

// Denylisted implements policy.History: an O(1) lookup in memory.
func (s *Store) Denylisted(account string) bool {
	s.mu.RLock()
	_, ok := s.deny[account]
	s.mu.RUnlock()
	return ok
}

func nonEmpty(lists ...[]string) error {
	for _, l := range lists {
		for i, a := range l {
			if a == "" {
				return fmt.Errorf("account %d is empty", i)
			}
		}
	}
	return nil
}
