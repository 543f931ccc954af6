package state

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/wire"
)

// GapError refuses a denylist delta that does not follow the stored list.
// Stale() tells a duplicate or old message (ignore it) from one that means
// the register must resync from HQ's snapshot: a gap in the sequence, a
// delta of another epoch, or a delta that is not newer by number but was
// issued after the stored list (HQ's list went back: a restored backup).
type GapError struct {
	// List is the list refused: "" (the denylist) or wire.SubjectAllowlist.
	List         string
	Current, Got wire.ListVersion
	// Why is "" for a gap in one epoch, else wire.ResetEpoch or
	// wire.ResetBackwards.
	Why string
	old bool // issued before the stored list
}

func (e *GapError) Error() string {
	list := e.List
	if list == "" {
		list = wire.SubjectDenylist
	}
	switch {
	case e.Stale():
		return fmt.Sprintf("%s sequence %d refused: already at %d", list, e.Got.Seq, e.Current.Seq)
	case e.Why == wire.ResetEpoch:
		return fmt.Sprintf("%s delta of epoch %q, list is of epoch %q: resync", list, e.Got.Epoch, e.Current.Epoch)
	case e.Why == wire.ResetBackwards:
		return fmt.Sprintf("%s delta %d issued after the stored list at %d: HQ's list went back, resync", list, e.Got.Seq, e.Current.Seq)
	}
	return fmt.Sprintf("%s sequence gap: at %d, got %d", list, e.Current.Seq, e.Got.Seq)
}

// Stale reports whether the refused message is an old one to ignore.
func (e *GapError) Stale() bool { return e.old || e.Why == "" && e.Got.Seq <= e.Current.Seq }

// judgeDelta decides what a delta of version got, issued at, means for a list
// at cur, last changed by a message issued at curAt. A message issued before
// the stored list is old whatever its number: after a restore, the old
// timeline's deltas follow the restored list by number but must not apply.
func judgeDelta(cur wire.ListVersion, curAt time.Time, got wire.ListVersion, at time.Time) *GapError {
	switch {
	case at.Before(curAt):
		return &GapError{Current: cur, Got: got, old: true}
	case cur.Epoch != got.Epoch && (cur.Epoch != "" || cur.Seq != 0):
		// A list from a store without epochs (an older posguard) is of
		// another epoch too: the snapshot brings the epoch.
		return &GapError{Current: cur, Got: got, Why: wire.ResetEpoch}
	case got.Seq == cur.Seq+1:
		return nil
	case got.Seq <= cur.Seq && at.After(curAt):
		return &GapError{Current: cur, Got: got, Why: wire.ResetBackwards}
	}
	return &GapError{Current: cur, Got: got}
}

// judgeSnapshot decides whether a snapshot replaces the list. Within an
// epoch a higher or equal sequence does; across epochs, or to a lower
// sequence (a restored backup), only a snapshot issued after the stored list
// does, which keeps a replayed old snapshot (a former epoch's, or an earlier
// one of this epoch) from rolling the list back. reset is "" for an ordinary
// replacement.
func judgeSnapshot(cur wire.ListVersion, curAt time.Time, got wire.ListVersion, at time.Time) (ok bool, reset string) {
	switch {
	case cur.Epoch == "" && cur.Seq == 0:
		return true, "" // first list ever
	case at.Before(curAt):
		return false, ""
	case cur.Epoch != got.Epoch:
		return at.After(curAt), wire.ResetEpoch
	case got.Seq >= cur.Seq:
		return true, ""
	}
	return at.After(curAt), wire.ResetBackwards
}

// ApplyDenylistDelta applies a delta without details (every account it
// adds is listed until removed): see ApplyDenylist.
func (s *Store) ApplyDenylistDelta(v wire.ListVersion, issuedAt time.Time, add, remove []string) error {
	return s.ApplyDenylist(wire.Delta{Epoch: v.Epoch, Seq: v.Seq, IssuedAt: issuedAt, Add: add, Remove: remove})
}

// ApplyDenylist applies a delta, which must be of the stored epoch and the
// stored sequence plus one; anything else is a *GapError. The details it
// brings for the accounts it adds (an automatic entry's rule and expiry)
// are written in the same transaction as the list (putDenyDetails).
func (s *Store) ApplyDenylist(d wire.Delta) error {
	v, issuedAt, add, remove := wire.ListVersion{Epoch: d.Epoch, Seq: d.Seq}, d.IssuedAt, d.Add, d.Remove
	if err := nonEmpty(add, remove); err != nil {
		return fmt.Errorf("denylist delta %d: %w", v.Seq, err)
	}
	s.denyMu.Lock()
	defer s.denyMu.Unlock()
	set := s.deny.Load()
	// The hashes of the accounts that were absent and added, or present
	// and removed: the index counts accounts, not requests.
	var added, removed []uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		added, removed = added[:0], removed[:0]
		meta := tx.Bucket([]byte(bMeta))
		cur, curAt := denylistMeta(meta)
		if gap := judgeDelta(cur, curAt, v, issuedAt); gap != nil {
			return gap
		}
		db := tx.Bucket([]byte(bDeny))
		for _, a := range add {
			if hasKey(db, []byte(a)) {
				continue
			}
			if err := db.Put([]byte(a), nil); err != nil {
				return err
			}
			added = append(added, set.hash(a))
		}
		for _, a := range remove {
			if !hasKey(db, []byte(a)) {
				continue
			}
			if err := db.Delete([]byte(a)); err != nil {
				return err
			}
			removed = append(removed, set.hash(a))
		}
		if err := putDenyDetails(tx, add, remove, d.Details); err != nil { // listdetails.go
			return err
		}
		return putDenylistMeta(meta, v, issuedAt)
	})
	if err != nil {
		return fmt.Errorf("denylist delta %d in %s: %w", v.Seq, s.path, err)
	}
	s.deny.Store(set.apply(added, removed))
	s.mu.Lock()
	s.denyVer, s.denyAt = v, issuedAt
	s.mirrorDenyDetails(add, remove, d.Details, nil)
	s.mu.Unlock()
	return nil
}

// hasKey reports whether b holds key. (Get cannot tell: within the
// transaction that put it, a key with an empty value reads as nil.)
func hasKey(b *bolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return bytes.Equal(k, key)
}

// ReplaceDenylist replaces the whole list with a snapshot without details:
// see ReplaceDenylistSnapshot.
func (s *Store) ReplaceDenylist(v wire.ListVersion, issuedAt time.Time, accounts []string) (*wire.DenylistReset, error) {
	return s.ReplaceDenylistSnapshot(wire.Snapshot{Epoch: v.Epoch, Seq: v.Seq, IssuedAt: issuedAt, Accounts: accounts})
}

// ReplaceDenylistSnapshot replaces the whole list, and every detail by the
// snapshot's, in one transaction. The same version
// again is accepted (the retained snapshot is re-delivered on every
// reconnect). A snapshot that may not replace the list (older in the same
// epoch, or of another epoch, and not issued after the stored list) is
// refused with a stale *GapError. A replacement across epochs or backwards
// returns the *wire.DenylistReset to report.
func (s *Store) ReplaceDenylistSnapshot(snap wire.Snapshot) (*wire.DenylistReset, error) {
	v, issuedAt, accounts := wire.ListVersion{Epoch: snap.Epoch, Seq: snap.Seq}, snap.IssuedAt, snap.Accounts
	details := snap.Details
	if details == nil {
		details = map[string]wire.ListDetail{} // a snapshot without details has none
	}
	if err := nonEmpty(accounts); err != nil {
		return nil, fmt.Errorf("denylist snapshot %d: %w", v.Seq, err)
	}
	// Sorted inserts let bbolt fill pages densely and sequentially.
	sorted := slices.Clone(accounts)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	s.denyMu.Lock()
	defer s.denyMu.Unlock()
	var reset *wire.DenylistReset
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bMeta))
		cur, curAt := denylistMeta(meta)
		ok, why := judgeSnapshot(cur, curAt, v, issuedAt)
		if !ok {
			return &GapError{Current: cur, Got: v, old: true}
		}
		if why != "" {
			reset = &wire.DenylistReset{From: cur, To: v, Why: why, At: issuedAt.UTC()}
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
		if err := replaceDenyDetails(tx, details); err != nil { // listdetails.go
			return err
		}
		return putDenylistMeta(meta, v, issuedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("denylist snapshot %d in %s: %w", v.Seq, s.path, err)
	}
	cur := s.deny.Load()
	hashes := make([]uint64, len(sorted))
	for i, a := range sorted {
		hashes[i] = cur.hash(a)
	}
	s.deny.Store(newDenySet(cur.seed, cur.hashOf, hashes))
	s.mu.Lock()
	s.denyVer, s.denyAt = v, issuedAt
	s.mirrorDenyDetails(nil, nil, nil, details)
	s.mu.Unlock()
	// Freeing the old list's pages read all of them.
	s.db.View(func(tx *bolt.Tx) error {
		releaseMapping(s.db, tx)
		return nil
	})
	return reset, nil
}

// DenylistVersion is the epoch and sequence of the stored denylist (zero:
// none yet).
func (s *Store) DenylistVersion() wire.ListVersion {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.denyVer
}

// DenylistSeq is the sequence number of the stored denylist (0: none yet).
func (s *Store) DenylistSeq() uint64 { return s.DenylistVersion().Seq }

// Denylisted implements policy.History. The in-memory index answers for
// every account not on the list, without a lock or an allocation. A hash
// found is confirmed in the file (a read transaction, ~10 µs), so an
// account whose 64-bit hash collides with a listed one's — about one lookup
// in 2^64/len, 5·10^-13 at 10,000,000 entries — is never denied for it.
func (s *Store) Denylisted(account string) bool {
	if !s.deny.Load().has(account) {
		return false
	}
	return s.denylistedInFile(account)
}

// denylistedInFile looks account up in the denylist bucket. Should the file
// not be readable (closed at shutdown, when no decision can be stored
// anyway), the index's answer stands.
func (s *Store) denylistedInFile(account string) bool {
	found := true
	err := s.db.View(func(tx *bolt.Tx) error {
		found = hasKey(tx.Bucket([]byte(bDeny)), []byte(account))
		return nil
	})
	if err != nil {
		s.log.Warn("denylist lookup in the state file failed; the in-memory index answers", "err", err)
		return true
	}
	return found
}

func denylistMeta(meta *bolt.Bucket) (wire.ListVersion, time.Time) {
	return listMeta(meta, kDenyEpoch, kDenySeq, kDenyAt)
}

func putDenylistMeta(meta *bolt.Bucket, v wire.ListVersion, at time.Time) error {
	return putListMeta(meta, kDenyEpoch, kDenySeq, kDenyAt, v, at)
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
