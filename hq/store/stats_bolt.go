package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
)

var (
	// hour (unix seconds, 8 bytes big endian) + store → decisions,
	// reviews, denies, yen refused (8 bytes big endian each)
	bStatsHourly = []byte("stats_hourly")
	// hour + rule → fired, shadow
	bStatsRules = []byte("stats_rules")
)

// initStats makes the rollup's buckets in a file that has none yet and
// counts the events it already holds.
func initStats(tx *bolt.Tx) error {
	if tx.Bucket(bStatsHourly) != nil {
		return nil
	}
	for _, b := range [][]byte{bStatsHourly, bStatsRules} {
		if _, err := tx.CreateBucket(b); err != nil {
			return err
		}
	}
	r := newRollup()
	err := tx.Bucket(bEvents).ForEach(func(k, v []byte) error {
		ev, err := event.Parse(v)
		if err != nil {
			return fmt.Errorf("event %s: %w", k, err)
		}
		r.add(ev)
		return nil
	})
	if err != nil {
		return err
	}
	return putRollup(tx, r)
}

func statsKey(hour time.Time, name string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(hour.Unix())), name...)
}

// putRollup adds what newly stored events count, in the transaction that
// stores them.
func putRollup(tx *bolt.Tx, r *rollup) error {
	hours, rules := tx.Bucket(bStatsHourly), tx.Bucket(bStatsRules)
	for _, h := range r.hours {
		if err := addCounters(hours, statsKey(h.Hour, h.Store), h.Decisions, h.Reviews, h.Denies, h.YenRefused); err != nil {
			return err
		}
	}
	for k, s := range r.rules {
		if err := addCounters(rules, statsKey(time.Unix(k.hour, 0), s.Rule), s.Fired, s.Shadow); err != nil {
			return err
		}
	}
	return nil
}

// addCounters adds n to the big-endian counters stored under k.
func addCounters(b *bolt.Bucket, k []byte, n ...int64) error {
	old := b.Get(k)
	v := make([]byte, 0, 8*len(n))
	for i, d := range n {
		if len(old) >= 8*(i+1) {
			d += int64(binary.BigEndian.Uint64(old[8*i:]))
		}
		v = binary.BigEndian.AppendUint64(v, uint64(d))
	}
	return b.Put(k, v)
}

func counters(v []byte, n int) ([]int64, error) {
	if len(v) != 8*n {
		return nil, fmt.Errorf("stats: %d bytes of counters, want %d", len(v), 8*n)
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(binary.BigEndian.Uint64(v[8*i:]))
	}
	return out, nil
}

// eachHour calls f for every key of b in q's hours, in key order.
func eachHour(b *bolt.Bucket, q StatsQuery, f func(hour time.Time, name string, v []byte) error) error {
	c := b.Cursor()
	var k, v []byte
	if q.Since.IsZero() {
		k, v = c.First()
	} else {
		k, v = c.Seek(statsKey(hourOf(q.Since), ""))
	}
	for ; k != nil; k, v = c.Next() {
		if len(k) < 8 {
			return fmt.Errorf("stats: key of %d bytes", len(k))
		}
		hour := time.Unix(int64(binary.BigEndian.Uint64(k[:8])), 0).UTC()
		if !q.Until.IsZero() && !hour.Before(q.Until) {
			return nil
		}
		if err := f(hour, string(k[8:]), v); err != nil {
			return err
		}
	}
	return nil
}

func (s *Bolt) HourlyStats(ctx context.Context, q StatsQuery) ([]HourStats, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	var out []HourStats
	limit := q.limit(MaxStatsRows)
	if q.Top > 0 {
		limit = 0 // folded below
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachHour(tx.Bucket(bStatsHourly), q, func(hour time.Time, store string, v []byte) error {
			if (q.Store != "" && store != q.Store) || (limit > 0 && len(out) >= limit) {
				return nil
			}
			n, err := counters(v, 4)
			if err != nil {
				return err
			}
			out = append(out, HourStats{Hour: hour, Store: store, Decisions: n[0], Reviews: n[1], Denies: n[2], YenRefused: n[3]})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("hourly stats: %w", err)
	}
	if q.Top > 0 {
		out = foldOthers(out, topStores(out, q.Top))
		out = out[:min(len(out), q.limit(MaxStatsRows))]
	}
	return out, nil
}

func (s *Bolt) RuleStats(ctx context.Context, q StatsQuery) ([]RuleStats, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	sum := map[string]*RuleStats{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachHour(tx.Bucket(bStatsRules), q, func(_ time.Time, rule string, v []byte) error {
			n, err := counters(v, 2)
			if err != nil {
				return err
			}
			r := sum[rule]
			if r == nil {
				r = &RuleStats{Rule: rule}
				sum[rule] = r
			}
			r.Fired += n[0]
			r.Shadow += n[1]
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("rule stats: %w", err)
	}
	return topRules(sum, q.limit(DefaultRuleLimit)), nil
}
