package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/posguard/posguard/wire"
)

// fleetMigration gives the fleet table the status fields the console
// counts by as stored generated columns, so summaries and rollouts read
// narrow indexes instead of parsing every register's status:
//   - fleet_store: a page of stores, or one store, reads its own
//     registers' entries (index-only) and no others;
//   - fleet_policy: a rollout counts the registers on a version, newer
//     ones and the refusals of a version from the index.
//
// policy_refused is the version a policy refusal names (NULL without one);
// scanner_down is the scanner link reported down.
const fleetMigration = `ALTER TABLE fleet
		ADD COLUMN online boolean GENERATED ALWAYS AS (COALESCE((status->>'online')::boolean, false)) STORED,
		ADD COLUMN policy_name text GENERATED ALWAYS AS (COALESCE(status#>>'{policy,name}', '')) STORED,
		ADD COLUMN policy_version bigint GENERATED ALWAYS AS (COALESCE((status#>>'{policy,version}')::bigint, 0)) STORED,
		ADD COLUMN outbox_depth integer GENERATED ALWAYS AS (COALESCE((status->>'outboxDepth')::integer, 0)) STORED,
		ADD COLUMN scanner_down boolean GENERATED ALWAYS AS (COALESCE(status#>>'{links,scanner}' = 'down', false)) STORED,
		ADD COLUMN policy_refused bigint GENERATED ALWAYS AS (CASE WHEN status#>>'{refusal,subject}' = 'policy'
			THEN COALESCE((status#>>'{refusal,version}')::bigint, 0) END) STORED;
	CREATE INDEX fleet_store ON fleet (store, register)
		INCLUDE (online, last_seen, policy_name, policy_version, outbox_depth, scanner_down, policy_refused);
	CREATE INDEX fleet_policy ON fleet (policy_version, policy_refused, online);`

func (s *Postgres) FleetStores(ctx context.Context, after string, limit int) ([]StoreSummary, error) {
	// One row per store and policy version, for the page's stores only,
	// folded into one summary per store below.
	rows, err := s.pool.Query(ctx, `WITH page AS (
			SELECT DISTINCT store FROM fleet WHERE store > $1 ORDER BY store LIMIT $2)
		SELECT f.store, f.policy_name, f.policy_version, count(*), count(*) FILTER (WHERE f.online),
			max(f.last_seen), max(f.outbox_depth), count(*) FILTER (WHERE f.scanner_down)
		FROM fleet f JOIN page USING (store)
		GROUP BY f.store, f.policy_name, f.policy_version
		ORDER BY f.store, f.policy_name, f.policy_version`, after, fleetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("read fleet stores: %w", err)
	}
	defer rows.Close()
	out := []StoreSummary{}
	for rows.Next() {
		var (
			store, name           string
			version               int64
			n, online, outbox, sd int
			seen                  time.Time
		)
		if err := rows.Scan(&store, &name, &version, &n, &online, &seen, &outbox, &sd); err != nil {
			return nil, fmt.Errorf("read fleet stores: %w", err)
		}
		if k := len(out); k == 0 || out[k-1].Store != store {
			out = append(out, StoreSummary{Store: store, Policies: []PolicyCount{}})
		}
		s := &out[len(out)-1]
		s.Registers += n
		s.Online += online
		s.Offline += n - online
		if seen.After(s.LastSeen) {
			s.LastSeen = seen
		}
		s.MaxOutbox = max(s.MaxOutbox, outbox)
		s.ScannersDown += sd
		if name != "" || version != 0 {
			s.addPolicy(name, version, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read fleet stores: %w", err)
	}
	return out, nil
}

func (s *Postgres) FleetOf(ctx context.Context, store, after string, limit int) ([]Register, error) {
	rows, err := s.pool.Query(ctx, `SELECT store, register, status, last_seen FROM fleet
		WHERE store = $1 AND register > $2 ORDER BY register LIMIT $3`, store, after, fleetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("read fleet of %s: %w", store, err)
	}
	out, err := scanRegisters(rows)
	if err != nil {
		return nil, fmt.Errorf("read fleet of %s: %w", store, err)
	}
	return out, nil
}

// scanRegisters reads rows of (store, register, status, last_seen).
func scanRegisters(rows pgx.Rows) ([]Register, error) {
	defer rows.Close()
	out := []Register{}
	for rows.Next() {
		var r Register
		var body []byte
		if err := rows.Scan(&r.Store, &r.Register, &body, &r.LastSeen); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(body, &r.Status); err != nil {
			return nil, fmt.Errorf("register %s/%s: %w", r.Store, r.Register, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// rolloutState is wire.Status.Rollout in SQL over the generated columns,
// with $2 the version.
const rolloutState = `CASE WHEN policy_refused = $2 THEN 'refused' WHEN policy_version = $2 THEN 'applied'
	WHEN policy_version > $2 THEN 'refused' WHEN NOT online THEN 'offline' ELSE 'pending' END`

func (s *Postgres) Rollout(ctx context.Context, scope string, v int64, limit int) (Rollout, error) {
	limit = fleetLimit(limit)
	ro := newRollout(scope, v)
	if scope == wire.ScopeAll {
		scope = "" // $1 = '' matches every store
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// Counts and lists from one snapshot, so they add up.
		rows, err := tx.Query(ctx, `SELECT `+rolloutState+`, count(*) FROM fleet
			WHERE ($1 = '' OR store = $1) GROUP BY 1`, scope, v)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var n int
			if err := rows.Scan(&state, &n); err != nil {
				return err
			}
			ro.Registers += n
			switch state {
			case wire.RolloutApplied:
				ro.Applied = n
			case wire.RolloutRefused:
				ro.Refused = n
			case wire.RolloutOffline:
				ro.Offline = n
			default:
				ro.Pending = n
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// The refused, then the waiting registers: each from the index on
		// the columns that make them so.
		for _, q := range []struct {
			where string
			list  *[]RolloutRegister
		}{
			{`(policy_refused = $2 OR policy_version > $2)`, &ro.Refusals},
			{`policy_version < $2 AND policy_refused IS DISTINCT FROM $2`, &ro.Waiting},
		} {
			rows, err := tx.Query(ctx, `SELECT store, register, status, last_seen FROM fleet
				WHERE ($1 = '' OR store = $1) AND `+q.where+` ORDER BY store, register LIMIT $3`, scope, v, limit)
			if err != nil {
				return err
			}
			regs, err := scanRegisters(rows)
			if err != nil {
				return err
			}
			for _, r := range regs {
				one := newRollout(ro.Scope, v)
				one.add(r, 1)
				*q.list = append(*q.list, append(one.Refusals, one.Waiting...)...)
			}
		}
		return nil
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("read rollout of v%d in %s: %w", v, ro.Scope, err)
	}
	return ro, nil
}
