package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

var (
	bEvents   = []byte("events")    // id → event JSON
	bByTime   = []byte("events_at") // unix nanos (8 bytes, big endian) + id → nil
	bFleet    = []byte("fleet")     // store/register → Register JSON
	bDenylist = []byte("denylist")  // account → nil
	bMeta     = []byte("meta")
	kDenySeq  = []byte("denylist_seq")
)

// Bolt is the single-file backend for one-machine setups and the demo.
type Bolt struct{ db *bolt.DB }

// OpenBolt opens (creating if needed) an HQ state file.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open HQ store %s: in use by another process", path)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("HQ store: %w", err) // it names the file
		}
		return nil, fmt.Errorf("open HQ store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bEvents, bByTime, bFleet, bDenylist, bMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open HQ store %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func timeKey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	return append(k, id...)
}

func (s *Bolt) SaveEvents(ctx context.Context, evs []event.Event) (int, error) {
	inserted := 0
	// Batch: concurrent ingest goroutines share one fsync.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		inserted = 0 // Batch may run the function again
		events, byTime := tx.Bucket(bEvents), tx.Bucket(bByTime)
		for _, ev := range evs {
			if events.Get([]byte(ev.ID)) != nil {
				continue
			}
			b, err := event.Marshal(ev)
			if err != nil {
				return err
			}
			if err := events.Put([]byte(ev.ID), b); err != nil {
				return err
			}
			if err := byTime.Put(timeKey(ev.At, ev.ID), nil); err != nil {
				return err
			}
			inserted++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store %d events: %w", len(evs), err)
	}
	return inserted, nil
}

func (s *Bolt) SaveStatus(ctx context.Context, st wire.Status, received time.Time) error {
	b, err := json.Marshal(Register{Store: st.Store, Register: st.Register, Status: st, LastSeen: received})
	if err != nil {
		return fmt.Errorf("store status of %s/%s: %w", st.Store, st.Register, err)
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bFleet).Put([]byte(st.Store+"/"+st.Register), b)
	})
	if err != nil {
		return fmt.Errorf("store status of %s/%s: %w", st.Store, st.Register, err)
	}
	return nil
}

func (s *Bolt) Fleet(ctx context.Context) ([]Register, error) {
	var out []Register
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bFleet).ForEach(func(k, v []byte) error {
			var r Register
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("register %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	return out, nil
}

func (s *Bolt) Events(ctx context.Context, q Query) ([]event.Event, error) {
	var out []event.Event
	limit := q.limit()
	err := s.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bEvents)
		c := tx.Bucket(bByTime).Cursor()
		var k []byte
		if q.Since.IsZero() {
			k, _ = c.First()
		} else {
			k, _ = c.Seek(timeKey(q.Since, ""))
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			ev, err := event.Parse(events.Get(k[8:]))
			if err != nil {
				return fmt.Errorf("event %s: %w", k[8:], err)
			}
			if q.match(ev) {
				out = append(out, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return out, nil
}

func (s *Bolt) DenylistChange(ctx context.Context, add, remove []string, at time.Time) (uint64, error) {
	var seq uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, list := tx.Bucket(bMeta), tx.Bucket(bDenylist)
		if v := meta.Get(kDenySeq); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		seq++
		for _, a := range add {
			if err := list.Put([]byte(a), nil); err != nil {
				return err
			}
		}
		for _, a := range remove {
			if err := list.Delete([]byte(a)); err != nil {
				return err
			}
		}
		return meta.Put(kDenySeq, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		return 0, fmt.Errorf("change denylist: %w", err)
	}
	return seq, nil
}

func (s *Bolt) Denylist(ctx context.Context) (uint64, []string, error) {
	var seq uint64
	var accounts []string
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kDenySeq); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return tx.Bucket(bDenylist).ForEach(func(k, _ []byte) error {
			accounts = append(accounts, string(bytes.Clone(k)))
			return nil
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read denylist: %w", err)
	}
	return seq, accounts, nil
}

func (s *Bolt) Close() error { return s.db.Close() }
