package store

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
)

// bAlertFeed is the alerts in storing order: sequence (8 bytes big
// endian) → event id. bbolt has one writer at a time, so the sequence's
// order is the order of commits.
var bAlertFeed = []byte("alert_feed")

// initConsole makes the console's buckets (the rollup, the feed) in a file
// that has none, filling them from the events it holds.
func initConsole(tx *bolt.Tx) error {
	if err := initStats(tx); err != nil {
		return err
	}
	if tx.Bucket(bAlertFeed) != nil {
		return nil
	}
	feed, err := tx.CreateBucket(bAlertFeed)
	if err != nil {
		return err
	}
	// Older alerts enter the feed in time order.
	events := tx.Bucket(bEvents)
	return tx.Bucket(bByTime).ForEach(func(k, _ []byte) error {
		v := events.Get(k[8:])
		ev, err := event.Parse(v)
		if err != nil {
			return fmt.Errorf("event %s: %w", k[8:], err)
		}
		return putFeed(feed, ev)
	})
}

// putFeed puts a newly stored alert at the end of the feed, in the
// transaction that stores it.
func putFeed(feed *bolt.Bucket, ev event.Event) error {
	if ev.Type != event.Alert {
		return nil
	}
	n, err := feed.NextSequence()
	if err != nil {
		return err
	}
	return feed.Put(binary.BigEndian.AppendUint64(nil, n), []byte(ev.ID))
}

func (s *Bolt) FeedEnd(ctx context.Context) (string, error) {
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bAlertFeed).Sequence()
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("alert feed: %w", err)
	}
	return feedPos{seq: n}.String(), nil
}

func (s *Bolt) AlertFeed(ctx context.Context, q Query, pos string, limit int) ([]FeedAlert, error) {
	p, err := parseFeedPos(pos)
	if err != nil {
		return nil, err
	}
	if p.pg {
		return nil, fmt.Errorf("%w %q: a PostgreSQL position on a bbolt store", ErrFeedPos, pos)
	}
	q = alertQuery(q)
	q.After, q.Before, q.Desc = "", "", false
	var out []FeedAlert
	err = s.db.View(func(tx *bolt.Tx) error {
		events, res := tx.Bucket(bEvents), tx.Bucket(bResolutions)
		c := tx.Bucket(bAlertFeed).Cursor()
		for k, id := c.Seek(binary.BigEndian.AppendUint64(nil, p.seq+1)); k != nil && len(out) < limit; k, id = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			ev, err := event.Parse(events.Get(id))
			if err != nil {
				return fmt.Errorf("event %s: %w", id, err)
			}
			if !q.match(ev) {
				continue
			}
			a, err := boltAlert(events, res, ev)
			if err != nil {
				return err
			}
			out = append(out, FeedAlert{Alert: a, Pos: feedPos{seq: binary.BigEndian.Uint64(k)}.String()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("alert feed: %w", err)
	}
	return out, nil
}
