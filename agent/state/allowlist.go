package state

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/wire"
)

// The allowlist: accounts a case at HQ found legitimate, each until its
// expiry. It is judged like the denylist (judgeDelta, judgeSnapshot) with
// its own version. Its bucket is made by the first allowlist message, so a
// file from before the allowlist needs no schema step: no bucket is an
// empty list.
const (
	bAllow      = "allowlist"        // account -> wire.ListDetail JSON
	kAllowSeq   = "allowlist-seq"    // in bMeta
	kAllowEpoch = "allowlist-epoch"  // in bMeta
	kAllowAt    = "allowlist-issued" // in bMeta: issuedAt of the last applied message, unix ns
)

// allowMirror is the allowlist in memory: the entries are few (one per
// false positive), so each keeps its whole detail.
type allowMirror struct {
	mu      sync.RWMutex
	entries map[string]wire.ListDetail
	ver     wire.ListVersion
	at      time.Time
}

func (m *allowMirror) load(tx *bolt.Tx) error {
	entries := map[string]wire.ListDetail{}
	if b := tx.Bucket([]byte(bAllow)); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var d wire.ListDetail
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("%w: allowlist entry %q: %w", ErrCorrupt, k, err)
			}
			entries[string(k)] = d
			return nil
		})
		if err != nil {
			return err
		}
	}
	ver, at := listMeta(tx.Bucket([]byte(bMeta)), kAllowEpoch, kAllowSeq, kAllowAt)
	m.mu.Lock()
	m.entries, m.ver, m.at = entries, ver, at
	m.mu.Unlock()
	return nil
}

// ApplyAllowlistDelta applies an allowlist delta (checked by
// wire.ValidateAllowDelta: every added account has its detail); like a
// denylist delta it must follow the stored version, else *GapError.
func (s *Store) ApplyAllowlistDelta(d wire.Delta) error {
	v := wire.ListVersion{Epoch: d.Epoch, Seq: d.Seq}
	if err := wire.ValidateAllowDelta(&d); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bMeta))
		cur, curAt := listMeta(meta, kAllowEpoch, kAllowSeq, kAllowAt)
		if gap := judgeDelta(cur, curAt, v, d.IssuedAt); gap != nil {
			gap.List = wire.SubjectAllowlist
			return gap
		}
		b, err := tx.CreateBucketIfNotExists([]byte(bAllow))
		if err != nil {
			return err
		}
		if err := putAllowEntries(b, d.Add, d.Details); err != nil {
			return err
		}
		for _, a := range d.Remove {
			if err := b.Delete([]byte(a)); err != nil {
				return err
			}
		}
		return putListMeta(meta, kAllowEpoch, kAllowSeq, kAllowAt, v, d.IssuedAt)
	})
	if err != nil {
		return fmt.Errorf("allowlist delta %d in %s: %w", d.Seq, s.path, err)
	}
	m := &s.allow
	m.mu.Lock()
	for _, a := range d.Add {
		m.entries[a] = d.Details[a]
	}
	for _, a := range d.Remove {
		delete(m.entries, a)
	}
	m.ver, m.at = v, d.IssuedAt
	m.mu.Unlock()
	return nil
}

// ReplaceAllowlist replaces the allowlist with a snapshot (checked by
// wire.ValidateAllowSnapshot), judged like a denylist snapshot: a refused
// one is a stale *GapError, a replacement across epochs or backwards
// returns the reset.
func (s *Store) ReplaceAllowlist(snap wire.Snapshot) (*wire.DenylistReset, error) {
	v := wire.ListVersion{Epoch: snap.Epoch, Seq: snap.Seq}
	if err := wire.ValidateAllowSnapshot(&snap); err != nil {
		return nil, err
	}
	var reset *wire.DenylistReset
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bMeta))
		cur, curAt := listMeta(meta, kAllowEpoch, kAllowSeq, kAllowAt)
		ok, why := judgeSnapshot(cur, curAt, v, snap.IssuedAt)
		if !ok {
			return &GapError{List: wire.SubjectAllowlist, Current: cur, Got: v, old: true}
		}
		if why != "" {
			reset = &wire.DenylistReset{From: cur, To: v, Why: why, At: snap.IssuedAt.UTC()}
		}
		if tx.Bucket([]byte(bAllow)) != nil {
			if err := tx.DeleteBucket([]byte(bAllow)); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucket([]byte(bAllow))
		if err != nil {
			return err
		}
		if err := putAllowEntries(b, snap.Accounts, snap.Details); err != nil {
			return err
		}
		return putListMeta(meta, kAllowEpoch, kAllowSeq, kAllowAt, v, snap.IssuedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("allowlist snapshot %d in %s: %w", snap.Seq, s.path, err)
	}
	entries := make(map[string]wire.ListDetail, len(snap.Accounts))
	for _, a := range snap.Accounts {
		entries[a] = snap.Details[a]
	}
	m := &s.allow
	m.mu.Lock()
	m.entries, m.ver, m.at = entries, v, snap.IssuedAt
	m.mu.Unlock()
	return reset, nil
}

func putAllowEntries(b *bolt.Bucket, accounts []string, details map[string]wire.ListDetail) error {
	for _, a := range accounts {
		v, err := json.Marshal(details[a])
		if err != nil {
			return err
		}
		if err := b.Put([]byte(a), v); err != nil {
			return err
		}
	}
	return nil
}

// AllowlistVersion is the epoch and sequence of the stored allowlist
// (zero: none yet).
func (s *Store) AllowlistVersion() wire.ListVersion {
	s.allow.mu.RLock()
	defer s.allow.mu.RUnlock()
	return s.allow.ver
}

// AllowlistEntry returns the account's allowlist entry if it is on the list
// and not expired at the time given (the sale's, so a decision does not
// depend on when it is replayed). The expiry instant itself is expired.
func (s *Store) AllowlistEntry(account string, at time.Time) (wire.ListDetail, bool) {
	s.allow.mu.RLock()
	d, ok := s.allow.entries[account]
	s.allow.mu.RUnlock()
	if !ok || !at.Before(d.ExpiresAt) {
		return wire.ListDetail{}, false
	}
	return d, true
}

// Allowlisted reports whether the account is on the allowlist at at.
func (s *Store) Allowlisted(account string, at time.Time) bool {
	_, ok := s.AllowlistEntry(account, at)
	return ok
}

// listMeta and putListMeta read and write a list's version and issue time
// in the meta bucket under the given keys.
func listMeta(meta *bolt.Bucket, kEpoch, kSeq, kAt string) (wire.ListVersion, time.Time) {
	v := wire.ListVersion{Epoch: string(meta.Get([]byte(kEpoch))), Seq: getU64(meta, kSeq)}
	var at time.Time
	if ns := getU64(meta, kAt); ns != 0 {
		at = time.Unix(0, int64(ns))
	}
	return v, at
}

func putListMeta(meta *bolt.Bucket, kEpoch, kSeq, kAt string, v wire.ListVersion, at time.Time) error {
	if err := meta.Put([]byte(kEpoch), []byte(v.Epoch)); err != nil {
		return err
	}
	if err := meta.Put([]byte(kAt), u64(uint64(at.UnixNano()))); err != nil {
		return err
	}
	return meta.Put([]byte(kSeq), u64(v.Seq))
}
