package state

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RollbackError refuses a policy bundle that is not newer than the highest
// version ever applied on this register; HQ (or an attacker replaying an
// old signed bundle) cannot roll a register back.
type RollbackError struct {
	Highest, Got int64
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("policy version %d refused: version %d was already applied", e.Got, e.Highest)
}

// SavePolicy stores a verified policy bundle as the active one. The caller
// verifies signature, scope and expiry; SavePolicy enforces that versions
// only go up, across restarts.
func (s *Store) SavePolicy(bundle []byte, version int64) error {
	if len(bundle) == 0 {
		return fmt.Errorf("save policy version %d: empty bundle", version)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bMeta))
		if highest, ok := getI64(meta, kPolicyMax); ok && version <= highest {
			return &RollbackError{Highest: highest, Got: version}
		}
		pb := tx.Bucket([]byte(bPolicy))
		if err := pb.Put([]byte(kBundle), bundle); err != nil {
			return err
		}
		if err := pb.Put([]byte(kVersion), u64(uint64(version))); err != nil {
			return err
		}
		return meta.Put([]byte(kPolicyMax), u64(uint64(version)))
	})
	if err != nil {
		return fmt.Errorf("save policy version %d in %s: %w", version, s.path, err)
	}
	return nil
}

// ActivePolicy returns the stored bundle and its version, or ErrNoPolicy.
func (s *Store) ActivePolicy() ([]byte, int64, error) {
	var (
		bundle  []byte
		version int64
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		pb := tx.Bucket([]byte(bPolicy))
		b := pb.Get([]byte(kBundle))
		if b == nil {
			return ErrNoPolicy
		}
		bundle = append([]byte(nil), b...)
		version, _ = getI64(pb, kVersion)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("active policy in %s: %w", s.path, err)
	}
	return bundle, version, nil
}

func getI64(b *bolt.Bucket, key string) (int64, bool) {
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0, false
	}
	return int64(getU64(b, key)), true
}
