package store

import (
	"bytes"
	"context"
	"crypto/rand"
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
	// store/register/saleId → time key of the sale's first resolution event
	bResolutions = []byte("resolutions")
	kDenySeq     = []byte("denylist_seq")
	kEpoch       = []byte("denylist_epoch") // made with the file, kept in it
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
		if meta := tx.Bucket(bMeta); meta.Get(kEpoch) == nil {
			// A file from before epochs gets one now: registers holding
			// its list resync once, which is harmless.
			if err := meta.Put(kEpoch, []byte(rand.Text())); err != nil {
				return err
			}
		}
		if err := initCases(tx); err != nil { // cases_bolt.go
			return err
		}
		if err := initConsole(tx); err != nil { // stats_bolt.go, feed_bolt.go
			return err
		}
		if err := initLists(tx); err != nil { // lists_bolt.go
			return err
		}
		if err := initFleetIdx(tx); err != nil { // fleet_bolt.go
			return err
		}
		if tx.Bucket(bResolutions) != nil {
			return nil
		}
		// A file from before the index: build it from the stored events.
		res, err := tx.CreateBucket(bResolutions)
		if err != nil {
			return err
		}
		return tx.Bucket(bEvents).ForEach(func(k, v []byte) error {
			ev, err := event.Parse(v)
			if err != nil {
				return fmt.Errorf("event %s: %w", k, err)
			}
			return indexResolution(res, ev)
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open HQ store %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func saleKey(store, register, saleID string) []byte {
	return []byte(store + "/" + register + "/" + saleID)
}

// indexResolution records ev if it is the first resolution of its sale in
// (at, id) order, as PostgreSQL picks it, whatever order they arrive in.
func indexResolution(b *bolt.Bucket, ev event.Event) error {
	if ev.Type != event.Resolution || ev.SaleID == "" {
		return nil
	}
	k, v := saleKey(ev.Store, ev.Register, ev.SaleID), timeKey(ev.At, ev.ID)
	if old := b.Get(k); old != nil && bytes.Compare(old, v) <= 0 {
		return nil
	}
	return b.Put(k, v)
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
		r := newRollup()
		for _, ev := range evs {
			added, err := putEvent(tx, ev)
			if err != nil {
				return err
			}
			if added {
				inserted++
				r.add(ev)
			}
		}
		return putRollup(tx, r) // stats_bolt.go: new events only
	})
	if err != nil {
		return 0, fmt.Errorf("store %d events: %w", len(evs), err)
	}
	return inserted, nil
}

// putEvent stores ev unless its id is already stored.
func putEvent(tx *bolt.Tx, ev event.Event) (added bool, err error) {
	events, byTime := tx.Bucket(bEvents), tx.Bucket(bByTime)
	if events.Get([]byte(ev.ID)) != nil {
		return false, nil
	}
	b, err := event.Marshal(ev)
	if err != nil {
		return false, err
	}
	if err := events.Put([]byte(ev.ID), b); err != nil {
		return false, err
	}
	if err := byTime.Put(timeKey(ev.At, ev.ID), nil); err != nil {
		return false, err
	}
	if err := putFeed(tx.Bucket(bAlertFeed), ev); err != nil { // feed_bolt.go
		return false, err
	}
	return true, indexResolution(tx.Bucket(bResolutions), ev)
}

func (s *Bolt) SaveStatus(ctx context.Context, st wire.Status, received time.Time) error {
	r := Register{Store: st.Store, Register: st.Register, Status: st, LastSeen: received}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store status of %s/%s: %w", st.Store, st.Register, err)
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		if err := putFleetIdx(tx, r); err != nil { // fleet_bolt.go
			return err
		}
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
		// Walk the time index from one end of the range towards the
		// other, stopping past it; match checks the rest.
		var k []byte
		var next func() ([]byte, []byte)
		var past func(k []byte) bool
		if q.Desc {
			next = c.Prev
			switch {
			case q.Until.IsZero():
				k, _ = c.Last()
			default:
				if k, _ = c.Seek(timeKey(q.Until, q.Before)); k == nil {
					k, _ = c.Last()
				}
			}
			lo := timeKey(q.Since, "")
			past = func(k []byte) bool { return !q.Since.IsZero() && bytes.Compare(k, lo) < 0 }
		} else {
			next = c.Next
			if q.Since.IsZero() {
				k, _ = c.First()
			} else {
				k, _ = c.Seek(timeKey(q.Since, ""))
			}
			hi := timeKey(q.Until, q.Before)
			past = func(k []byte) bool { return !q.Until.IsZero() && bytes.Compare(k, hi) >= 0 }
		}
		for ; k != nil && len(out) < limit && !past(k); k, _ = next() {
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

func (s *Bolt) Alerts(ctx context.Context, q Query) ([]Alert, error) {
	evs, err := s.Events(ctx, alertQuery(q))
	if err != nil {
		return nil, err
	}
	out := make([]Alert, 0, len(evs))
	err = s.db.View(func(tx *bolt.Tx) error {
		events, res := tx.Bucket(bEvents), tx.Bucket(bResolutions)
		for _, ev := range evs {
			a, err := boltAlert(events, res, ev)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	return out, nil
}

// boltAlert gives the alert ev its state from the first resolution of its
// sale.
func boltAlert(events, res *bolt.Bucket, ev event.Event) (Alert, error) {
	var r *event.Event
	if v := res.Get(saleKey(ev.Store, ev.Register, ev.SaleID)); len(v) > 8 {
		id := v[8:]
		rev, err := event.Parse(events.Get(id))
		if err != nil {
			return Alert{}, fmt.Errorf("resolution %s: %w", id, err)
		}
		r = &rev
	}
	return newAlert(ev, r), nil
}

func (s *Bolt) DenylistChange(ctx context.Context, c ListChange) (wire.ListVersion, error) {
	var v wire.ListVersion
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, list := tx.Bucket(bMeta), tx.Bucket(bDenylist)
		v.Epoch = string(meta.Get(kEpoch))
		if b := meta.Get(kDenySeq); len(b) == 8 {
			v.Seq = binary.BigEndian.Uint64(b)
		}
		v.Seq++
		rec := c.record(v)
		for _, a := range c.Add {
			// The entry names the record of the change that added it
			// (lists_bolt.go).
			if err := list.Put([]byte(a), []byte(rec.ID)); err != nil {
				return err
			}
		}
		for _, a := range c.Remove {
			if err := list.Delete([]byte(a)); err != nil {
				return err
			}
		}
		if _, err := putEvent(tx, rec); err != nil {
			return err
		}
		if err := putDetails(tx, c); err != nil { // chain_bolt.go
			return err
		}
		return meta.Put(kDenySeq, binary.BigEndian.AppendUint64(nil, v.Seq))
	})
	if err != nil {
		return wire.ListVersion{}, fmt.Errorf("change denylist: %w", err)
	}
	return v, nil
}

func (s *Bolt) Denylist(ctx context.Context) (wire.ListVersion, []string, error) {
	var seq uint64
	var epoch string
	var accounts []string
	err := s.db.View(func(tx *bolt.Tx) error {
		epoch = string(tx.Bucket(bMeta).Get(kEpoch))
		if v := tx.Bucket(bMeta).Get(kDenySeq); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return tx.Bucket(bDenylist).ForEach(func(k, _ []byte) error {
			accounts = append(accounts, string(bytes.Clone(k)))
			return nil
		})
	})
	if err != nil {
		return wire.ListVersion{}, nil, fmt.Errorf("read denylist: %w", err)
	}
	return wire.ListVersion{Epoch: epoch, Seq: seq}, accounts, nil
}

func (s *Bolt) Close() error { return s.db.Close() }
