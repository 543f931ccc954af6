package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/wire"
)

// The fleet bucket is keyed store/register, and ids never contain "/", so
// one store's registers are one contiguous run of keys: a page of stores
// or one store is a cursor walk over just those keys.

// storeEnd is the first key after every key of store: "/" + 1 is "0".
func storeEnd(store string) []byte { return []byte(store + "0") }

func decodeRegister(k, v []byte) (Register, error) {
	var r Register
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("register %s: %w", k, err)
	}
	return r, nil
}

func (s *Bolt) FleetStores(ctx context.Context, after string, limit int) ([]StoreSummary, error) {
	limit = fleetLimit(limit)
	out := []StoreSummary{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bFleet).Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek(storeEnd(after))
		}
		for ; k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			store, _, _ := bytes.Cut(k, []byte("/"))
			if n := len(out); n == 0 || out[n-1].Store != string(store) {
				if n == limit {
					return nil
				}
				out = append(out, StoreSummary{Store: string(store), Policies: []PolicyCount{}})
			}
			r, err := decodeRegister(k, v)
			if err != nil {
				return err
			}
			out[len(out)-1].add(r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read fleet stores: %w", err)
	}
	for i := range out {
		sortPolicies(out[i].Policies)
	}
	return out, nil
}

func (s *Bolt) FleetOf(ctx context.Context, store, after string, limit int) ([]Register, error) {
	limit = fleetLimit(limit)
	out := []Register{}
	err := s.eachOf(ctx, store, after, func(r Register) bool {
		out = append(out, r)
		return len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("read fleet of %s: %w", store, err)
	}
	return out, nil
}

// eachOf calls f for the registers of store (every store for
// wire.ScopeAll) after the register named after, in key order, until f
// returns false.
func (s *Bolt) eachOf(ctx context.Context, store, after string, f func(Register) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bFleet).Cursor()
		var prefix []byte
		k, v := c.First()
		if store != wire.ScopeAll {
			prefix = []byte(store + "/")
			k, v = c.Seek(append(prefix, after...))
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if after != "" && string(k[len(prefix):]) == after {
				continue
			}
			r, err := decodeRegister(k, v)
			if err != nil {
				return err
			}
			if !f(r) {
				return nil
			}
		}
		return nil
	})
}

func (s *Bolt) Rollout(ctx context.Context, scope string, v int64, limit int) (Rollout, error) {
	limit = fleetLimit(limit)
	ro := newRollout(scope, v)
	// The bbolt store serves the demo and single stores: the whole scope
	// is read (PostgreSQL counts from an index instead).
	err := s.eachOf(ctx, scope, "", func(r Register) bool {
		ro.add(r, limit)
		return true
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("read rollout of v%d in %s: %w", v, scope, err)
	}
	return ro, nil
}
