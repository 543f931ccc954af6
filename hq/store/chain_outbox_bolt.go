package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// id → boltFiring JSON: the chain rules' firings until carried out.
var bChainFirings = []byte("chain_firings")

type boltFiring struct {
	At         time.Time       `json:"at"`
	Body       json.RawMessage `json:"body"`
	Seq        uint64          `json:"seq"` // order recorded
	Owner      string          `json:"owner,omitempty"`
	LeaseUntil time.Time       `json:"leaseUntil,omitzero"`
	Tries      int             `json:"tries"`
	DoneAt     time.Time       `json:"doneAt,omitzero"`
}

// putFirings keeps fs pending in tx, each once by id.
func putFirings(tx *bolt.Tx, fs []ChainFiring) error {
	if len(fs) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bChainFirings)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if b.Get([]byte(f.ID)) != nil {
			continue
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(boltFiring{At: f.At.UTC(), Body: f.Body, Seq: seq})
		if err != nil {
			return fmt.Errorf("firing %s: %w", f.ID, err)
		}
		if err := b.Put([]byte(f.ID), v); err != nil {
			return err
		}
	}
	return nil
}

// eachFiring calls fn with every firing in the bucket (if any); fn's
// changed record is written back when it reports true.
func eachFiring(tx *bolt.Tx, fn func(id string, f *boltFiring) (bool, error)) error {
	b := tx.Bucket(bChainFirings)
	if b == nil {
		return nil
	}
	type change struct {
		id string
		f  boltFiring
	}
	var changes []change
	err := b.ForEach(func(k, v []byte) error {
		var f boltFiring
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("firing %s: %w", k, err)
		}
		changed, err := fn(string(k), &f)
		if changed {
			changes = append(changes, change{string(k), f})
		}
		return err
	})
	if err != nil {
		return err
	}
	// Written after the walk: bbolt forbids changing a bucket mid-ForEach.
	for _, c := range changes {
		v, err := json.Marshal(c.f)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(c.id), v); err != nil {
			return err
		}
	}
	return nil
}

// ChainClaim leases on this process's clock: a bbolt file has one process.
func (s *Bolt) ChainClaim(ctx context.Context, owner string, lease time.Duration, n int) ([]ChainFiring, error) {
	now := time.Now()
	type pending struct {
		id string
		f  boltFiring
	}
	var out []ChainFiring
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = nil
		var free []pending
		err := eachFiring(tx, func(id string, f *boltFiring) (bool, error) {
			if f.DoneAt.IsZero() && !f.LeaseUntil.After(now) {
				free = append(free, pending{id, *f})
			}
			return false, nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(free, func(a, b pending) int { return cmp.Compare(a.f.Seq, b.f.Seq) })
		b := tx.Bucket(bChainFirings)
		for _, p := range free[:min(len(free), n)] {
			p.f.Owner, p.f.LeaseUntil, p.f.Tries = owner, now.Add(lease), p.f.Tries+1
			v, err := json.Marshal(p.f)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(p.id), v); err != nil {
				return err
			}
			out = append(out, ChainFiring{ID: p.id, At: p.f.At, Body: p.f.Body, Tries: p.f.Tries})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim chain firings: %w", err)
	}
	return out, nil
}

func (s *Bolt) ChainDone(ctx context.Context, id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bChainFirings)
		if b == nil {
			return fmt.Errorf("no such firing")
		}
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("no such firing")
		}
		var f boltFiring
		if err := json.Unmarshal(v, &f); err != nil {
			return err
		}
		if !f.DoneAt.IsZero() {
			return nil
		}
		f.DoneAt, f.LeaseUntil = time.Now().UTC(), time.Time{}
		v, err := json.Marshal(f)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
	if err != nil {
		return fmt.Errorf("chain firing %s done: %w", id, err)
	}
	return nil
}

func (s *Bolt) ChainRelease(ctx context.Context, owner string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return eachFiring(tx, func(_ string, f *boltFiring) (bool, error) {
			if f.Owner != owner || !f.DoneAt.IsZero() || f.LeaseUntil.IsZero() {
				return false, nil
			}
			f.LeaseUntil = time.Time{}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("release chain firings: %w", err)
	}
	return nil
}

// pruneFirings drops the firings done before before.
func pruneFirings(tx *bolt.Tx, before time.Time) (int, error) {
	b := tx.Bucket(bChainFirings)
	if b == nil {
		return 0, nil
	}
	var drop []string
	err := eachFiring(tx, func(id string, f *boltFiring) (bool, error) {
		if !f.DoneAt.IsZero() && f.DoneAt.Before(before) {
			drop = append(drop, id)
		}
		return false, nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range drop {
		if err := b.Delete([]byte(id)); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}
