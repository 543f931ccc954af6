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

// PutDenylistDetails records the details a delta brings for the accounts it
// adds, and forgets the old detail of an account added without one (a
// manual entry never expires). The agent calls it before applying the
// delta's list change: a detail for an account not (yet) listed is never
// read, and a crash in between leaves no manual entry expiring.
func (s *Store) PutDenylistDetails(add []string, details map[string]wire.ListDetail) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
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
		return nil
	})
	if err != nil {
		return fmt.Errorf("denylist details in %s: %w", s.path, err)
	}
	s.mu.Lock()
	for _, a := range add {
		if d, ok := details[a]; ok {
			s.denyDetails[a] = d
		} else {
			delete(s.denyDetails, a)
		}
	}
	s.mu.Unlock()
	return nil
}

// DropDenylistDetails forgets the details of removed accounts (after the
// delta that removed them applied).
func (s *Store) DropDenylistDetails(remove []string) error {
	return s.ReplaceDenylistDetails(nil, remove)
}

// ReplaceDenylistDetails replaces every detail by a snapshot's (keep nil:
// none), or, with drop, forgets only those accounts' details.
func (s *Store) ReplaceDenylistDetails(keep map[string]wire.ListDetail, drop []string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if drop != nil {
			b := tx.Bucket([]byte(bDenyDetails))
			if b == nil {
				return nil
			}
			for _, a := range drop {
				if err := b.Delete([]byte(a)); err != nil {
					return err
				}
			}
			return nil
		}
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
	})
	if err != nil {
		return fmt.Errorf("denylist details in %s: %w", s.path, err)
	}
	s.mu.Lock()
	if drop != nil {
		for _, a := range drop {
			delete(s.denyDetails, a)
		}
	} else {
		s.denyDetails = make(map[string]wire.ListDetail, len(keep))
		for a, d := range keep {
			s.denyDetails[a] = d
		}
	}
	s.mu.Unlock()
	return nil
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
