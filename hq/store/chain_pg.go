package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// chainMigration holds the chain rules' observations and the details of
// automatic denylist entries.
const chainMigration = `CREATE TABLE chain_obs (
		rule     text COLLATE "C" NOT NULL,
		key      text COLLATE "C" NOT NULL,
		event_id text COLLATE "C" NOT NULL,
		member   text COLLATE "C" NOT NULL,
		at       timestamptz NOT NULL,
		PRIMARY KEY (rule, key, event_id)
	);
	CREATE INDEX chain_obs_window ON chain_obs (rule, key, at);
	CREATE INDEX chain_obs_at ON chain_obs (at);
	CREATE TABLE denylist_details (
		account    text PRIMARY KEY,
		expires_at timestamptz,
		detail     jsonb NOT NULL
	);`

// chainLockClass is the first key of the advisory locks that serialise the
// observations of one (rule, key) across HQ instances.
const chainLockClass = 72020

// chainLockStripes is how many locks the (rule, key)s share: a batch
// takes at most this many, however many keys it touches (PostgreSQL's
// lock table is small and shared), and two instances wait for each other
// only when their keys share a stripe.
const chainLockStripes = 64

// chainKey is one (rule, key) a batch touches and the span of time its
// observations' windows cover.
type chainKey struct {
	rule, key string
	from, to  time.Time
}

func (s *Postgres) ChainObserve(ctx context.Context, obs []ChainObs, judge func([]ChainSeen) ([]ChainFiring, error)) ([]ChainSeen, error) {
	if len(obs) == 0 {
		return nil, nil
	}
	obs = slices.Clone(obs) // its times are truncated below
	n := len(obs)
	rules, keys, members, ids := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	touched := make(map[[2]string]int, n) // (rule, key) → its place in order
	var order []chainKey
	keyOf := make([]int, n) // each observation's place in order
	var stripes []int32
	for i, o := range obs {
		// As PostgreSQL keeps it, so that times compare alike here and there.
		o.At = o.At.Truncate(time.Microsecond)
		obs[i] = o
		rules[i], keys[i], members[i], ids[i], ats[i] = o.Rule, o.Key, o.Member, o.EventID, o.At
		j, ok := touched[[2]string{o.Rule, o.Key}]
		if !ok {
			j = len(order)
			touched[[2]string{o.Rule, o.Key}] = j
			order = append(order, chainKey{rule: o.Rule, key: o.Key, from: o.At.Add(-o.Window), to: o.At.Add(o.Window)})
			stripes = append(stripes, chainStripe(o.Rule, o.Key))
		} else {
			k := &order[j]
			k.from, k.to = minTime(k.from, o.At.Add(-o.Window)), maxTime(k.to, o.At.Add(o.Window))
		}
		keyOf[i] = j
	}
	// Locks taken in one order by every instance cannot deadlock.
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	kRules, kKeys, kFrom, kTo := make([]string, len(order)), make([]string, len(order)), make([]time.Time, len(order)), make([]time.Time, len(order))
	for i, k := range order {
		kRules[i], kKeys[i], kFrom[i], kTo[i] = k.rule, k.key, k.from, k.to
	}
	var seen []ChainSeen
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		seen = make([]ChainSeen, n)
		b := &pgx.Batch{}
		b.Queue(`SELECT count(pg_advisory_xact_lock($1, s)) FROM unnest($2::int[]) s`, chainLockClass, stripes)
		// Unique by (rule, key, at, event id) since chainOutboxMigration:
		// an event resent is the same event, at the same time.
		b.Queue(`INSERT INTO chain_obs (rule, key, member, event_id, at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
			ON CONFLICT DO NOTHING RETURNING rule, key, event_id`, rules, keys, members, ids, ats)
		// Every observation of each touched key over the span its
		// observations' windows cover, in one scan of the window index;
		// nearestHits picks each observation's share.
		b.Queue(`SELECT k.n, c.member, c.event_id, c.at
			FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY k(rule, key, lo, hi, n)
			JOIN chain_obs c ON c.rule = k.rule AND c.key = k.key AND c.at BETWEEN k.lo AND k.hi`,
			kRules, kKeys, kFrom, kTo)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		added := map[[3]string]bool{}
		for rows.Next() {
			var k [3]string
			if err := rows.Scan(&k[0], &k[1], &k[2]); err != nil {
				return fmt.Errorf("record: %w", err)
			}
			added[k] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("record: %w", err)
		}
		rows, err = br.Query()
		if err != nil {
			return fmt.Errorf("count: %w", err)
		}
		cands := make([][]ChainHit, len(order)) // by place in order
		for rows.Next() {
			var i int
			var h ChainHit
			if err := rows.Scan(&i, &h.Member, &h.EventID, &h.At); err != nil {
				return fmt.Errorf("count: %w", err)
			}
			h.At = h.At.UTC()
			cands[i-1] = append(cands[i-1], h)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if err := br.Close(); err != nil {
			return err
		}
		for i, o := range obs {
			seen[i].New = added[[3]string{o.Rule, o.Key, o.EventID}]
			seen[i].Others = nearestHits(o, cands[keyOf[i]])
		}
		if judge == nil {
			return nil
		}
		fs, err := judge(seen)
		if err != nil {
			return err
		}
		return insertFirings(ctx, tx, fs)
	})
	if err != nil {
		return nil, fmt.Errorf("chain observations: %w", err)
	}
	return seen, nil
}

// chainStripe is FNV-1a (32 bits) of rule, 0x1f, key, modulo the stripes.
func chainStripe(rule, key string) int32 {
	const prime = 16777619
	h := uint32(2166136261)
	for _, s := range [...]string{rule, "\x1f", key} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint32(s[i])) * prime
		}
	}
	return int32(h % chainLockStripes)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (s *Postgres) ChainPrune(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM chain_obs WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune chain observations: %w", err)
	}
	done, err := s.pool.Exec(ctx, `DELETE FROM chain_firings WHERE done_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune chain firings: %w", err)
	}
	return int(tag.RowsAffected() + done.RowsAffected()), nil
}

// chainAlertPrefix starts the id of every alert a chain rule raised.
const chainAlertPrefix = event.HQStore + "/" + event.HQChain + "/"

func (s *Postgres) ChainFires(ctx context.Context) (map[string]int64, error) {
	// The ids share a prefix, so the primary key (COLLATE "C") finds them.
	rows, err := s.pool.Query(ctx, `SELECT body->'chain'->>'rule', count(*) FROM events
		WHERE id >= $1 AND id < $2 GROUP BY 1`, chainAlertPrefix, chainAlertPrefix[:len(chainAlertPrefix)-1]+"0")
	if err != nil {
		return nil, fmt.Errorf("count chain alerts: %w", err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var rule string
		var n int64
		if err := rows.Scan(&rule, &n); err != nil {
			return nil, fmt.Errorf("count chain alerts: %w", err)
		}
		out[rule] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count chain alerts: %w", err)
	}
	return out, nil
}

func (s *Postgres) DenylistDetails(ctx context.Context) (map[string]wire.ListDetail, error) {
	rows, err := s.pool.Query(ctx, `SELECT account, detail FROM denylist_details`)
	if err != nil {
		return nil, fmt.Errorf("read denylist details: %w", err)
	}
	out := map[string]wire.ListDetail{}
	for rows.Next() {
		var a string
		var b []byte
		if err := rows.Scan(&a, &b); err != nil {
			return nil, fmt.Errorf("read denylist details: %w", err)
		}
		var d wire.ListDetail
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("read denylist details: %s: %w", a, err)
		}
		out[a] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read denylist details: %w", err)
	}
	return out, nil
}

// saveDetails keeps c's details in tx: an added account gets its detail,
// or loses an old one when added plainly (a manual entry never expires);
// a removed account loses its detail.
func saveDetails(ctx context.Context, tx pgx.Tx, c ListChange) error {
	drop := slices.Concat(c.Remove)
	for _, a := range c.Add {
		d, ok := c.Details[a]
		if !ok {
			drop = append(drop, a)
			continue
		}
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		var exp *time.Time
		if !d.ExpiresAt.IsZero() {
			exp = &d.ExpiresAt
		}
		if _, err := tx.Exec(ctx, `INSERT INTO denylist_details (account, expires_at, detail) VALUES ($1, $2, $3)
			ON CONFLICT (account) DO UPDATE SET expires_at = EXCLUDED.expires_at, detail = EXCLUDED.detail`, a, exp, b); err != nil {
			return err
		}
	}
	if len(drop) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM denylist_details WHERE account = ANY($1)`, drop); err != nil {
			return err
		}
	}
	return nil
}
