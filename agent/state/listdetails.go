package state

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/wire"
)

// bDenyDetails keeps the details HQ sends with automatic denylist entries
// (account → wire.ListDetail JSON): the chain rule that added the account,
// why, and until when. Entries without a detail never expire. Automatic
// entries are few, so the details live in a small map beside the list.
const bDenyDetails = "denylist-details"

func loadDenylistDetails(tx *bolt.Tx) (map[string]wire.ListDetail, error) {
	out := map[string]wire.ListDetail{}
	b := tx.Bucket([]byte(bDenyDetails))
	if b == nil {
		return out, nil // a state file from before details
	}
	err := b.ForEach(func(k, v []byte) error {
		var d wire.ListDetail
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("denylist detail of %q: %w", k, err)
		}
		out[string(k)] = d
		return nil
	})
	return out, err
}

// putDenyDetails writes, in the transaction that applies a delta to the
// list, the details the delta brings for the accounts it adds, forgets the
// old detail of an account added without one (a manual entry never
// expires) and of an account removed. One transaction with the list: a
// delta refused (a gap, a redelivery) writes no detail, and a crash leaves
// the list and its details of the same version.
func putDenyDetails(tx *bolt.Tx, add, remove []string, details map[string]wire.ListDetail) error {
	b, err := tx.CreateBucketIfNotExists([]byte(bDenyDetails))
	if err != nil {
		return err
	}
	for _, a := range add {
		d, ok := details[a]
		if !ok {
			if err := b.Delete([]byte(a)); err != nil {
				return err
			}
			continue
		}
		if err := putDetail(b, a, d); err != nil {
			return err
		}
	}
	for _, a := range remove {
		if err := b.Delete([]byte(a)); err != nil {
			return err
		}
	}
	return nil
}

// replaceDenyDetails replaces every detail by a snapshot's, in the
// snapshot's transaction.
func replaceDenyDetails(tx *bolt.Tx, keep map[string]wire.ListDetail) error {
	if tx.Bucket([]byte(bDenyDetails)) != nil {
		if err := tx.DeleteBucket([]byte(bDenyDetails)); err != nil {
			return err
		}
	}
	b, err := tx.CreateBucket([]byte(bDenyDetails))
	if err != nil {
		return err
	}
	for a, d := range keep {
		if err := putDetail(b, a, d); err != nil {
			return err
		}
	}
	return nil
}

// mirrorDenyDetails makes the in-memory details what putDenyDetails (keep
// nil) or replaceDenyDetails (keep set) committed. Called with s.mu held.
func (s *Store) mirrorDenyDetails(add, remove []string, details, keep map[string]wire.ListDetail) {
	if keep != nil {
		s.denyDetails = make(map[string]wire.ListDetail, len(keep))
		for a, d := range keep {
			s.denyDetails[a] = d
		}
		return
	}
	for _, a := range add {
		if d, ok := details[a]; ok {
			s.denyDetails[a] = d
		} else {
			delete(s.denyDetails, a)
		}
	}
	for _, a := range remove {
		delete(s.denyDetails, a)
	}
}

// DenylistEntry reports whether account is on the denylist at the time at
// (an entry whose ExpiresAt is at or before at is absent: the sale's time,
// not the wall clock), with its detail when it has one.
func (s *Store) DenylistEntry(account string, at time.Time) (wire.ListDetail, bool) {
	if !s.Denylisted(account) {
		return wire.ListDetail{}, false
	}
	s.mu.RLock()
	d := s.denyDetails[account]
	s.mu.RUnlock()
	if !d.ExpiresAt.IsZero() && !at.Before(d.ExpiresAt) {
		return d, false
	}
	return d, true
}

// DenylistReason implements policy.DenylistReasons.
func (s *Store) DenylistReason(account string, at time.Time) (rule, reason string, listed bool) {
	d, ok := s.DenylistEntry(account, at)
	return d.Rule, d.Reason, ok
}

func putDetail(b *bolt.Bucket, account string, d wire.ListDetail) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return b.Put([]byte(account), v)
}
