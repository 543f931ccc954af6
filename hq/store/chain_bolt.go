package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

var (
	// rule \0 key \0 time key (at, event id) → member
	bChainObs = []byte("chain_obs")
	// rule \0 key \0 event id → at (8 bytes): each observation once
	bChainIDs = []byte("chain_obs_ids")
	// account → wire.ListDetail JSON
	bDenyDetails = []byte("denylist_details")
)

// chainBuckets creates the chain buckets; bbolt files from before them
// get them on the first write.
func chainBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bChainObs, bChainIDs, bDenyDetails} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

func chainPrefix(rule, key string) []byte {
	return []byte(rule + "\x00" + key + "\x00")
}

// ChainObserve runs in one write transaction; bbolt has a single writer,
// so observations of one key are serialised as on PostgreSQL.
func (s *Bolt) ChainObserve(ctx context.Context, obs []ChainObs, judge func([]ChainSeen) ([]ChainFiring, error)) ([]ChainSeen, error) {
	if len(obs) == 0 {
		return nil, nil
	}
	var seen []ChainSeen
	err := s.db.Update(func(tx *bolt.Tx) error {
		seen = make([]ChainSeen, len(obs))
		if err := chainBuckets(tx); err != nil {
			return err
		}
		ob, ids := tx.Bucket(bChainObs), tx.Bucket(bChainIDs)
		for i, o := range obs {
			p := chainPrefix(o.Rule, o.Key)
			idk := append(bytes.Clone(p), o.EventID...)
			if ids.Get(idk) == nil {
				seen[i].New = true
				if err := ids.Put(idk, binary.BigEndian.AppendUint64(nil, uint64(o.At.UnixNano()))); err != nil {
					return err
				}
				if err := ob.Put(append(bytes.Clone(p), timeKey(o.At, o.EventID)...), []byte(o.Member)); err != nil {
					return err
				}
			}
		}
		// Counted after every observation of the batch is in, as on
		// PostgreSQL, where the batch's inserts precede its counts.
		for i, o := range obs {
			seen[i].Others = nearestHits(o, boltWindow(ob, o))
		}
		if judge == nil {
			return nil
		}
		fs, err := judge(seen)
		if err != nil {
			return err
		}
		return putFirings(tx, fs)
	})
	if err != nil {
		return nil, fmt.Errorf("chain observations: %w", err)
	}
	return seen, nil
}

// boltWindow lists the observations under o's rule and key at
// [At-Window, At+Window].
func boltWindow(ob *bolt.Bucket, o ChainObs) []ChainHit {
	p := chainPrefix(o.Rule, o.Key)
	end := o.At.Add(o.Window).UnixNano()
	var out []ChainHit
	c := ob.Cursor()
	for k, v := c.Seek(append(bytes.Clone(p), timeKey(o.At.Add(-o.Window), "")...)); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		tk := k[len(p):]
		ns := int64(binary.BigEndian.Uint64(tk[:8]))
		if ns > end {
			break
		}
		out = append(out, ChainHit{Member: string(v), EventID: string(tk[8:]), At: time.Unix(0, ns).UTC()})
	}
	return out
}

func (s *Bolt) ChainPrune(ctx context.Context, before time.Time) (int, error) {
	n := 0
	limit := before.UnixNano()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := chainBuckets(tx); err != nil {
			return err
		}
		n = 0
		ob, ids := tx.Bucket(bChainObs), tx.Bucket(bChainIDs)
		var drop [][]byte
		err := ids.ForEach(func(k, v []byte) error {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < limit {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			// Event ids hold no NUL: the last one ends the prefix.
			cut := bytes.LastIndexByte(k, 0) + 1
			at := int64(binary.BigEndian.Uint64(ids.Get(k)))
			if err := ob.Delete(append(bytes.Clone(k[:cut]), timeKey(time.Unix(0, at), string(k[cut:]))...)); err != nil {
				return err
			}
			if err := ids.Delete(k); err != nil {
				return err
			}
			n++
		}
		done, err := pruneFirings(tx, before)
		n += done
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune chain observations: %w", err)
	}
	return n, nil
}

func (s *Bolt) ChainFires(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		p := []byte(chainAlertPrefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			ev, err := event.Parse(v)
			if err != nil {
				return fmt.Errorf("event %s: %w", k, err)
			}
			out[ev.Chain.Rule]++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count chain alerts: %w", err)
	}
	return out, nil
}

func (s *Bolt) DenylistDetails(ctx context.Context) (map[string]wire.ListDetail, error) {
	out := map[string]wire.ListDetail{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDenyDetails)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var d wire.ListDetail
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			out[string(k)] = d
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read denylist details: %w", err)
	}
	return out, nil
}

// putDetails is saveDetails (chain_pg.go) for bbolt.
func putDetails(tx *bolt.Tx, c ListChange) error {
	if err := chainBuckets(tx); err != nil {
		return err
	}
	b := tx.Bucket(bDenyDetails)
	for _, a := range c.Remove {
		if err := b.Delete([]byte(a)); err != nil {
			return err
		}
	}
	for _, a := range c.Add {
		d, ok := c.Details[a]
		if !ok {
			if err := b.Delete([]byte(a)); err != nil {
				return err
			}
			continue
		}
		v, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(a), v); err != nil {
			return err
		}
	}
	return nil
}
