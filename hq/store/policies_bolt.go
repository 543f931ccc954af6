package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// version (8 bytes, big endian) → boltPolicy JSON: keys sort by version,
// so the newest is the last.
var bPolicies = []byte("policy_versions")

// boltPolicy is PolicyVersion with its bundle and document, which the
// API's JSON leaves out.
type boltPolicy struct {
	PolicyVersion
	Bundle   []byte `json:"bundle"`
	Document string `json:"document"`
}

func policyKey(version int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(version)) }

func (s *Bolt) SavePolicy(ctx context.Context, v PolicyVersion) (bool, error) {
	if v.Version < 1 {
		return false, fmt.Errorf("save policy: version %d, want ≥ 1", v.Version)
	}
	inserted := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bPolicies) // files from before it get it now
		if err != nil {
			return err
		}
		k := policyKey(v.Version)
		if old := b.Get(k); old != nil {
			var p boltPolicy
			if err := json.Unmarshal(old, &p); err != nil {
				return err
			}
			if p.Digest != v.Digest {
				return fmt.Errorf("v%d: %w", v.Version, ErrPolicyConflict)
			}
			return nil
		}
		rec, err := json.Marshal(boltPolicy{PolicyVersion: v, Bundle: v.Bundle, Document: string(v.Document)})
		if err != nil {
			return err
		}
		inserted = true
		return b.Put(k, rec)
	})
	if err != nil {
		return false, fmt.Errorf("save policy v%d: %w", v.Version, err)
	}
	return inserted, nil
}

func (s *Bolt) PolicyVersions(ctx context.Context, q PolicyQuery) ([]PolicyVersion, error) {
	out := []PolicyVersion{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPolicies)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if q.Before > 0 {
			// The last key below Before: seek to it, then step back.
			if k, _ = c.Seek(policyKey(q.Before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < q.limit(); k, v = c.Prev() {
			var p boltPolicy
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("version %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, p.PolicyVersion)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy versions: %w", err)
	}
	return out, nil
}

func (s *Bolt) PolicyVersion(ctx context.Context, version int64) (PolicyVersion, error) {
	var p boltPolicy
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPolicies)
		if b == nil {
			return nil
		}
		v := b.Get(policyKey(version))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return PolicyVersion{}, fmt.Errorf("policy v%d: %w", version, err)
	}
	if !found {
		return PolicyVersion{}, fmt.Errorf("v%d: %w", version, ErrPolicyNotFound)
	}
	v := p.PolicyVersion
	v.Bundle, v.Document = p.Bundle, []byte(p.Document)
	return v, nil
}
