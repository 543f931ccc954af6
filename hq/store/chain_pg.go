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

func (s *Postgres) ChainObserve(ctx context.Context, obs []ChainObs) ([]ChainSeen, error) {
	if len(obs) == 0 {
		return nil, nil
	}
	n := len(obs)
	rules, keys, members, ids := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats, wins := make([]time.Time, n), make([]int64, n)
	lockKeys := make([]string, 0, n)
	for i, o := range obs {
		rules[i], keys[i], members[i], ids[i], ats[i], wins[i] = o.Rule, o.Key, o.Member, o.EventID, o.At, o.Window.Microseconds()
		lockKeys = append(lockKeys, o.Rule+"\x1f"+o.Key)
	}
	// Locks taken in one order by every instance cannot deadlock (bar
	// hash collisions, which PostgreSQL detects; the batch is retried).
	slices.Sort(lockKeys)
	lockKeys = slices.Compact(lockKeys)
	seen := make([]ChainSeen, n)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT count(pg_advisory_xact_lock($1, hashtext(k))) FROM unnest($2::text[]) k`, chainLockClass, lockKeys)
		b.Queue(`INSERT INTO chain_obs (rule, key, member, event_id, at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
			ON CONFLICT DO NOTHING RETURNING rule, key, event_id`, rules, keys, members, ids, ats)
		b.Queue(`SELECT o.n, h.member, h.event_id, h.at
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[]) WITH ORDINALITY o(rule, key, id, at, win, n)
			CROSS JOIN LATERAL (SELECT x.member, x.event_id, x.at FROM (
				SELECT DISTINCT ON (c.member, c.at > o.at) c.member, c.event_id, c.at, abs(extract(epoch FROM c.at - o.at)) AS d
				FROM chain_obs c
				WHERE c.rule = o.rule AND c.key = o.key AND c.event_id <> o.id
					AND c.at BETWEEN o.at - o.win * interval '1 microsecond' AND o.at + o.win * interval '1 microsecond'
				ORDER BY c.member, c.at > o.at, abs(extract(epoch FROM c.at - o.at)), c.event_id) x
				ORDER BY x.d, x.event_id LIMIT `+fmt.Sprint(MaxChainScan)+`) h
			ORDER BY o.n, h.at, h.event_id`,
			rules, keys, ids, ats, wins)
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
		for i, o := range obs {
			seen[i].New = added[[3]string{o.Rule, o.Key, o.EventID}]
		}
		rows, err = br.Query()
		if err != nil {
			return fmt.Errorf("count: %w", err)
		}
		for rows.Next() {
			var i int
			var h ChainHit
			if err := rows.Scan(&i, &h.Member, &h.EventID, &h.At); err != nil {
				return fmt.Errorf("count: %w", err)
			}
			h.At = h.At.UTC()
			seen[i-1].Others = append(seen[i-1].Others, h)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("chain observations: %w", err)
	}
	return seen, nil
}

func (s *Postgres) ChainPrune(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM chain_obs WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune chain observations: %w", err)
	}
	return int(tag.RowsAffected()), nil
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
