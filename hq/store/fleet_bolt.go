package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

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
		c := tx.Bucket(bFleetIdx).Cursor()
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
			x, err := parseFleetIdx(k, v)
			if err != nil {
				return err
			}
			out[len(out)-1].add(x.register())
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
	// Counted from the index; only the registers listed are read whole.
	err := s.db.View(func(tx *bolt.Tx) error {
		c, fleet := tx.Bucket(bFleetIdx).Cursor(), tx.Bucket(bFleet)
		var prefix []byte
		k, val := c.First()
		if scope != wire.ScopeAll {
			prefix = []byte(scope + "/")
			k, val = c.Seek(prefix)
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			x, err := parseFleetIdx(k, val)
			if err != nil {
				return err
			}
			r := x.register()
			if state, _ := r.Status.Rollout(v); state != wire.RolloutApplied {
				listed := len(ro.Waiting)
				if state == wire.RolloutRefused {
					listed = len(ro.Refusals)
				}
				if listed < limit {
					if r, err = decodeRegister(k, fleet.Get(k)); err != nil {
						return err
					}
				}
			}
			ro.add(r, limit)
		}
		return nil
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("read rollout of v%d in %s: %w", v, scope, err)
	}
	return ro, nil
}

// bFleetIdx is the bbolt counterpart of PostgreSQL's generated columns:
// store/register → the status fields the console counts by, fixed-size
// but for the policy name, so summaries and rollouts never parse JSON.
var bFleetIdx = []byte("fleet_idx")

// fleetIdx is one register's entry in bFleetIdx.
type fleetIdx struct {
	store, reg  string
	online      bool
	scannerDown bool
	refusal     bool  // a policy refusal, of version refused
	refused     int64 // the refused policy version
	version     int64 // the policy version run, 0: none
	outbox      int32
	lastSeen    int64 // unix nanoseconds
	policyName  string
}

const fleetIdxFixed = 1 + 8 + 8 + 4 + 8

func indexOf(r Register) fleetIdx {
	x := fleetIdx{store: r.Store, reg: r.Register, online: r.Status.Online, scannerDown: r.Status.Links.Scanner == wire.LinkDown,
		outbox: int32(min(r.Status.OutboxDepth, 1<<31-1)), lastSeen: r.LastSeen.UnixNano()}
	if p := r.Status.Policy; p != nil {
		x.version, x.policyName = p.Version, p.Name
	}
	if rf := r.Status.Refusal; rf != nil && rf.Subject == wire.SubjectPolicy {
		x.refusal, x.refused = true, rf.Version
	}
	return x
}

func (x fleetIdx) marshal() []byte {
	var flags byte
	for i, b := range []bool{x.online, x.scannerDown, x.refusal, x.policyName != "" || x.version != 0} {
		if b {
			flags |= 1 << i
		}
	}
	b := append(make([]byte, 0, fleetIdxFixed+len(x.policyName)), flags)
	b = binary.BigEndian.AppendUint64(b, uint64(x.version))
	b = binary.BigEndian.AppendUint64(b, uint64(x.refused))
	b = binary.BigEndian.AppendUint32(b, uint32(x.outbox))
	b = binary.BigEndian.AppendUint64(b, uint64(x.lastSeen))
	return append(b, x.policyName...)
}

func parseFleetIdx(k, v []byte) (fleetIdx, error) {
	if len(v) < fleetIdxFixed {
		return fleetIdx{}, fmt.Errorf("fleet index %s: %d bytes, want at least %d", k, len(v), fleetIdxFixed)
	}
	store, reg, _ := bytes.Cut(k, []byte("/"))
	x := fleetIdx{store: string(store), reg: string(reg), online: v[0]&1 != 0, scannerDown: v[0]&2 != 0, refusal: v[0]&4 != 0,
		version: int64(binary.BigEndian.Uint64(v[1:])), refused: int64(binary.BigEndian.Uint64(v[9:])),
		outbox: int32(binary.BigEndian.Uint32(v[17:])), lastSeen: int64(binary.BigEndian.Uint64(v[21:])),
		policyName: string(v[fleetIdxFixed:])}
	if v[0]&8 == 0 {
		x.policyName, x.version = "", 0
	}
	return x, nil
}

// register is the part of the register the index holds, enough for
// StoreSummary.add and Status.Rollout.
func (x fleetIdx) register() Register {
	r := Register{Store: x.store, Register: x.reg, LastSeen: time.Unix(0, x.lastSeen).UTC(),
		Status: wire.Status{Store: x.store, Register: x.reg, Online: x.online, OutboxDepth: int(x.outbox)}}
	if x.scannerDown {
		r.Status.Links.Scanner = wire.LinkDown
	}
	if x.policyName != "" || x.version != 0 {
		r.Status.Policy = &wire.PolicyInfo{Name: x.policyName, Version: x.version}
	}
	if x.refusal {
		r.Status.Refusal = &wire.Refusal{Subject: wire.SubjectPolicy, Version: x.refused}
	}
	return r
}

// putFleetIdx indexes r, in SaveStatus's transaction.
func putFleetIdx(tx *bolt.Tx, r Register) error {
	return tx.Bucket(bFleetIdx).Put([]byte(r.Store+"/"+r.Register), indexOf(r).marshal())
}

// initFleetIdx makes the index when a file has none, from the fleet.
func initFleetIdx(tx *bolt.Tx) error {
	if tx.Bucket(bFleetIdx) != nil {
		return nil
	}
	idx, err := tx.CreateBucket(bFleetIdx)
	if err != nil {
		return err
	}
	return tx.Bucket(bFleet).ForEach(func(k, v []byte) error {
		r, err := decodeRegister(k, v)
		if err != nil {
			return err
		}
		return idx.Put(k, indexOf(r).marshal())
	})
}
