package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// consoleMigration holds the console's hourly rollup (stats.go), filled
// from the events already stored, and the indexes of the alert listing and
// the live feed (feed_pg.go). Hours are UTC, as hourOf makes them, whatever
// the session's time zone.
const consoleMigration = `CREATE TABLE stats_hourly (
		hour        timestamptz NOT NULL,
		store       text COLLATE "C" NOT NULL,
		decisions   bigint NOT NULL DEFAULT 0,
		reviews     bigint NOT NULL DEFAULT 0,
		denies      bigint NOT NULL DEFAULT 0,
		yen_refused bigint NOT NULL DEFAULT 0,
		PRIMARY KEY (hour, store)
	);
	CREATE TABLE stats_rules (
		hour   timestamptz NOT NULL,
		rule   text COLLATE "C" NOT NULL,
		fired  bigint NOT NULL DEFAULT 0,
		shadow bigint NOT NULL DEFAULT 0,
		PRIMARY KEY (hour, rule)
	);
	CREATE INDEX events_alerts_at ON events (at, id) WHERE type = 'alert';
	CREATE INDEX events_alerts_store_at ON events (store, at, id) WHERE type = 'alert';
	CREATE INDEX events_alerts_received ON events (received, id) WHERE type = 'alert';` + statsBackfill

// statsBackfill counts the events stored before the rollup existed, as
// rollup.add would have.
const statsBackfill = `
	INSERT INTO stats_hourly (hour, store, decisions, reviews, denies, yen_refused)
	SELECT date_trunc('hour', e.at, 'UTC'), e.store, count(*),
		count(*) FILTER (WHERE e.body->'decision'->>'outcome' = 'review'),
		count(*) FILTER (WHERE e.body->'decision'->>'outcome' = 'deny'),
		coalesce(sum((SELECT sum((l->>'quantity')::bigint * (l->>'unitPrice')::bigint)
			FROM jsonb_array_elements(CASE jsonb_typeof(e.body->'request'->'lines') WHEN 'array' THEN e.body->'request'->'lines' ELSE '[]' END) l))
			FILTER (WHERE e.body->'decision'->>'outcome' = 'deny'), 0)
	FROM events e WHERE e.type = 'decision' AND e.body ? 'decision' GROUP BY 1, 2;
	INSERT INTO stats_rules (hour, rule, fired, shadow)
	SELECT hour, rule, count(*) FILTER (WHERE mode IS DISTINCT FROM 'shadow'), count(*) FILTER (WHERE mode = 'shadow') FROM (
		SELECT date_trunc('hour', e.at, 'UTC') AS hour, r->>'id' AS rule, r->>'mode' AS mode FROM events e,
			jsonb_array_elements(CASE jsonb_typeof(e.body->'decision'->'rules') WHEN 'array' THEN e.body->'decision'->'rules' ELSE '[]' END) r
			WHERE e.type = 'decision'
		UNION ALL
		SELECT date_trunc('hour', e.at, 'UTC'), e.body->'chain'->>'rule', e.body->'chain'->>'mode' FROM events e
			WHERE e.type = 'alert' AND e.body ? 'chain'
	) x GROUP BY 1, 2;`

// saveRollup adds what the new events of a batch count to the rollup, in
// the transaction that stored them.
func saveRollup(ctx context.Context, tx pgx.Tx, r *rollup) error {
	if r.empty() {
		return nil
	}
	if hours := r.sortedHours(); len(hours) > 0 {
		var (
			at                  []time.Time
			stores              []string
			dec, rev, deny, yen []int64
		)
		for _, h := range hours {
			at, stores = append(at, h.Hour), append(stores, h.Store)
			dec, rev, deny, yen = append(dec, h.Decisions), append(rev, h.Reviews), append(deny, h.Denies), append(yen, h.YenRefused)
		}
		_, err := tx.Exec(ctx, `INSERT INTO stats_hourly AS s (hour, store, decisions, reviews, denies, yen_refused)
			SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
			ON CONFLICT (hour, store) DO UPDATE SET decisions = s.decisions + EXCLUDED.decisions,
				reviews = s.reviews + EXCLUDED.reviews, denies = s.denies + EXCLUDED.denies,
				yen_refused = s.yen_refused + EXCLUDED.yen_refused`, at, stores, dec, rev, deny, yen)
		if err != nil {
			return fmt.Errorf("hourly stats: %w", err)
		}
	}
	if rules := r.sortedRules(); len(rules) > 0 {
		var (
			at            []time.Time
			ids           []string
			fired, shadow []int64
		)
		for _, h := range rules {
			at, ids, fired, shadow = append(at, h.Hour), append(ids, h.Rule), append(fired, h.Fired), append(shadow, h.Shadow)
		}
		_, err := tx.Exec(ctx, `INSERT INTO stats_rules AS s (hour, rule, fired, shadow)
			SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::bigint[])
			ON CONFLICT (hour, rule) DO UPDATE SET fired = s.fired + EXCLUDED.fired, shadow = s.shadow + EXCLUDED.shadow`,
			at, ids, fired, shadow)
		if err != nil {
			return fmt.Errorf("rule stats: %w", err)
		}
	}
	return nil
}

// statsArgs are q's bounds as $1 (since's hour) and $2 (until), NULL when
// unset.
func statsArgs(q StatsQuery) (since, until *time.Time) {
	if !q.Since.IsZero() {
		h := hourOf(q.Since)
		since = &h
	}
	if !q.Until.IsZero() {
		until = &q.Until
	}
	return since, until
}

func (s *Postgres) HourlyStats(ctx context.Context, q StatsQuery) ([]HourStats, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	since, until := statsArgs(q)
	// With top, the stores beyond the top q.Top by denies (then
	// decisions, then name) are summed under OtherStores, which sorts
	// before any store name ("*" is 0x2A).
	rows, err := s.pool.Query(ctx, `WITH r AS (SELECT * FROM stats_hourly
			WHERE ($1::timestamptz IS NULL OR hour >= $1) AND ($2::timestamptz IS NULL OR hour < $2) AND ($3 = '' OR store = $3)),
		top AS (SELECT store FROM r GROUP BY store ORDER BY sum(denies) DESC, sum(decisions) DESC, store LIMIT $5)
		SELECT hour, s, sum(decisions)::bigint, sum(reviews)::bigint, sum(denies)::bigint, sum(yen_refused)::bigint FROM (
			SELECT r.*, CASE WHEN $5 = 0 OR r.store IN (SELECT store FROM top) THEN r.store ELSE '*' END COLLATE "C" AS s FROM r) x
		GROUP BY hour, s ORDER BY hour, s LIMIT $4`, since, until, q.Store, q.limit(MaxStatsRows), q.Top)
	if err != nil {
		return nil, fmt.Errorf("hourly stats: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (HourStats, error) {
		var h HourStats
		err := row.Scan(&h.Hour, &h.Store, &h.Decisions, &h.Reviews, &h.Denies, &h.YenRefused)
		h.Hour = h.Hour.UTC()
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("hourly stats: %w", err)
	}
	return out, nil
}

func (s *Postgres) RuleStats(ctx context.Context, q StatsQuery) ([]RuleStats, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	since, until := statsArgs(q)
	rows, err := s.pool.Query(ctx, `SELECT rule, sum(fired)::bigint, sum(shadow)::bigint FROM stats_rules
		WHERE ($1::timestamptz IS NULL OR hour >= $1) AND ($2::timestamptz IS NULL OR hour < $2)
		GROUP BY rule ORDER BY 2 DESC, 3 DESC, rule LIMIT $3`, since, until, q.limit(DefaultRuleLimit))
	if err != nil {
		return nil, fmt.Errorf("rule stats: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RuleStats, error) {
		var r RuleStats
		return r, row.Scan(&r.Rule, &r.Fired, &r.Shadow)
	})
	if err != nil {
		return nil, fmt.Errorf("rule stats: %w", err)
	}
	return out, nil
}
