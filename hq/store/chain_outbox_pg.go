package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// chainOutboxMigration holds the chain rules' firings until they are
// carried out (ChainObserve, ChainClaim), and halves the indexes each
// observation costs: the primary key becomes the window index (an event's
// id fixes its time, so (rule, key, at, event id) is unique when (rule,
// key, event id) is), and pruning by time needs only a BRIN index, as
// observations come roughly in time order.
const chainOutboxMigration = `ALTER TABLE chain_obs DROP CONSTRAINT chain_obs_pkey, ADD PRIMARY KEY (rule, key, at, event_id);
	DROP INDEX chain_obs_window;
	DROP INDEX chain_obs_at;
	CREATE INDEX chain_obs_at ON chain_obs USING brin (at);
	CREATE TABLE chain_firings (
		id          text COLLATE "C" PRIMARY KEY,
		at          timestamptz NOT NULL,
		body        jsonb NOT NULL,
		recorded    timestamptz NOT NULL DEFAULT clock_timestamp(),
		owner       text NOT NULL DEFAULT '',
		lease_until timestamptz,
		tries       int NOT NULL DEFAULT 0,
		done_at     timestamptz
	);
	CREATE INDEX chain_firings_pending ON chain_firings (recorded, id) WHERE done_at IS NULL;
	CREATE INDEX chain_firings_done ON chain_firings (done_at) WHERE done_at IS NOT NULL;`

// insertFirings keeps fs pending in tx, each once by id.
func insertFirings(ctx context.Context, tx pgx.Tx, fs []ChainFiring) error {
	if len(fs) == 0 {
		return nil
	}
	ids, ats, bodies := make([]string, len(fs)), make([]time.Time, len(fs)), make([]string, len(fs))
	for i, f := range fs {
		ids[i], ats[i], bodies[i] = f.ID, f.At, string(f.Body)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO chain_firings (id, at, body)
		SELECT i, a, b::jsonb FROM unnest($1::text[], $2::timestamptz[], $3::text[]) f(i, a, b)
		ON CONFLICT DO NOTHING`, ids, ats, bodies); err != nil {
		return fmt.Errorf("keep firings: %w", err)
	}
	return nil
}

// ChainClaim skips the firings another instance holds locked, so two
// instances claiming at once take different ones; the lease is on the
// database's clock, which every instance shares.
func (s *Postgres) ChainClaim(ctx context.Context, owner string, lease time.Duration, n int) ([]ChainFiring, error) {
	rows, err := s.pool.Query(ctx, `UPDATE chain_firings f
		SET owner = $1, lease_until = clock_timestamp() + $2 * interval '1 microsecond', tries = f.tries + 1
		FROM (SELECT id FROM chain_firings
			WHERE done_at IS NULL AND (lease_until IS NULL OR lease_until < clock_timestamp())
			ORDER BY recorded, id LIMIT $3 FOR UPDATE SKIP LOCKED) p
		WHERE f.id = p.id
		RETURNING f.id, f.at, f.body::text, f.tries, f.recorded`, owner, lease.Microseconds(), n)
	if err != nil {
		return nil, fmt.Errorf("claim chain firings: %w", err)
	}
	type claimed struct {
		f        ChainFiring
		recorded time.Time
	}
	var got []claimed
	for rows.Next() {
		var c claimed
		var body string
		if err := rows.Scan(&c.f.ID, &c.f.At, &body, &c.f.Tries, &c.recorded); err != nil {
			return nil, fmt.Errorf("claim chain firings: %w", err)
		}
		c.f.At, c.f.Body = c.f.At.UTC(), []byte(body)
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim chain firings: %w", err)
	}
	// RETURNING keeps no order.
	slices.SortFunc(got, func(a, b claimed) int {
		return cmp.Or(a.recorded.Compare(b.recorded), strings.Compare(a.f.ID, b.f.ID))
	})
	out := make([]ChainFiring, len(got))
	for i, c := range got {
		out[i] = c.f
	}
	return out, nil
}

func (s *Postgres) ChainDone(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE chain_firings SET done_at = clock_timestamp(), lease_until = NULL
		WHERE id = $1 AND done_at IS NULL`, id); err != nil {
		return fmt.Errorf("chain firing %s done: %w", id, err)
	}
	return nil
}

func (s *Postgres) ChainRelease(ctx context.Context, owner string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE chain_firings SET lease_until = NULL
		WHERE owner = $1 AND done_at IS NULL`, owner); err != nil {
		return fmt.Errorf("release chain firings: %w", err)
	}
	return nil
}
