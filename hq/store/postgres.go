package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// migrations are applied in order, each once, inside a transaction; the
// index of the last applied one is kept in posguard_schema. Append only:
// never edit a migration that has shipped.
var migrations = []string{
	`CREATE TABLE events (
		id         text COLLATE "C" PRIMARY KEY,
		seq        bigint NOT NULL,
		type       text NOT NULL,
		store      text NOT NULL,
		register   text NOT NULL,
		at         timestamptz NOT NULL,
		account    text NOT NULL DEFAULT '',
		body       jsonb NOT NULL,
		received   timestamptz NOT NULL DEFAULT now()
	);
	CREATE INDEX events_at ON events (at);
	CREATE INDEX events_store_at ON events (store, at);
	CREATE INDEX events_account_at ON events (account, at) WHERE account <> '';
	CREATE TABLE fleet (
		store     text NOT NULL,
		register  text NOT NULL,
		status    jsonb NOT NULL,
		last_seen timestamptz NOT NULL,
		PRIMARY KEY (store, register)
	);
	CREATE TABLE denylist (account text PRIMARY KEY, added timestamptz NOT NULL);
	CREATE TABLE denylist_seq (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL);
	INSERT INTO denylist_seq (seq) VALUES (0);`,
	// GET /v1/alerts finds each alert's resolution by sale.
	`CREATE INDEX events_resolution_sale ON events (store, register, (body->>'saleId'), at, id) WHERE type = 'resolution';`,
	// The denylist's epoch: a database restored from a backup keeps it, a
	// new one gets its own (see wire.ListVersion).
	`ALTER TABLE denylist_seq ADD COLUMN epoch text NOT NULL DEFAULT gen_random_uuid()::text;`,
	// Cases and the allowlist (cases_pg.go). At most one open case per
	// subject ("account:…" or "store:…"); label_at is when the verdict was
	// given. The allowlist has its own epoch and seq.
	`CREATE TABLE cases (
		id       bigserial PRIMARY KEY,
		subject  text NOT NULL,
		account  text NOT NULL DEFAULT '',
		stores   text[] NOT NULL DEFAULT '{}',
		state    text NOT NULL,
		label    text NOT NULL DEFAULT '',
		label_at timestamptz,
		alerts   int NOT NULL DEFAULT 0,
		opened   timestamptz NOT NULL,
		updated  timestamptz NOT NULL
	);
	CREATE UNIQUE INDEX cases_open_subject ON cases (subject) WHERE state = 'open';
	CREATE INDEX cases_labelled ON cases (account, label_at) WHERE label <> '';
	CREATE TABLE case_alerts (
		event_id text COLLATE "C" PRIMARY KEY,
		case_id  bigint NOT NULL REFERENCES cases,
		at       timestamptz NOT NULL,
		body     jsonb NOT NULL
	);
	CREATE INDEX case_alerts_case ON case_alerts (case_id, at, event_id);
	CREATE TABLE case_history (
		n          bigserial PRIMARY KEY,
		case_id    bigint NOT NULL REFERENCES cases,
		from_state text NOT NULL,
		to_state   text NOT NULL,
		changed_by text NOT NULL,
		note       text NOT NULL,
		at         timestamptz NOT NULL
	);
	CREATE INDEX case_history_case ON case_history (case_id, n);
	CREATE TABLE allowlist (
		account    text PRIMARY KEY,
		detail     jsonb NOT NULL,
		changed_by text NOT NULL,
		reason     text NOT NULL,
		added      timestamptz NOT NULL
	);
	CREATE TABLE allowlist_seq (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL,
		epoch text NOT NULL DEFAULT gen_random_uuid()::text);
	INSERT INTO allowlist_seq (seq) VALUES (0);`,
	chainMigration,       // chain_pg.go
	consoleMigration,     // stats_pg.go: the console's rollup and alert indexes
	policiesMigration,    // policies_pg.go
	fleetMigration,       // fleet_pg.go: the console's fleet page
	listsMigration,       // lists_pg.go
	chainOutboxMigration, // chain_outbox_pg.go
}

// Postgres is the backend for real deployments; several HQ instances may
// share one database.
type Postgres struct{ pool *pgxpool.Pool }

// OpenPostgres connects and applies any pending schema migrations.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Postgres{pool: pool}, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The advisory lock keeps two HQ instances starting at once from
		// applying the same migration twice.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(72019)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS posguard_schema (version int NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM posguard_schema`).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO posguard_schema VALUES (0)`); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		case err != nil:
			return fmt.Errorf("migrate: read schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("migrate: database schema version %d is newer than this posguard (%d); upgrade posguard", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate: step %d: %w", i+1, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE posguard_schema SET version = $1`, len(migrations))
		return err
	})
}

const insertEventSQL = `INSERT INTO events (id, seq, type, store, register, at, account, body)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`

// insertEvent stores one event in tx unless its id is already stored.
func insertEvent(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	b, err := event.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, insertEventSQL, ev.ID, int64(ev.Seq), string(ev.Type), ev.Store, ev.Register, ev.At, account(ev), b)
	return err
}

func (s *Postgres) SaveEvents(ctx context.Context, evs []event.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	// In id order: two instances storing the same events at once (a
	// redelivery) wait on each other's rows in one order, never in a
	// cycle, as they do on the rollup's rows (stats_pg.go).
	evs = slices.SortedFunc(slices.Values(evs), func(a, b event.Event) int { return strings.Compare(a.ID, b.ID) })
	batch := &pgx.Batch{}
	for _, ev := range evs {
		b, err := event.Marshal(ev)
		if err != nil {
			return 0, err
		}
		batch.Queue(insertEventSQL, ev.ID, int64(ev.Seq), string(ev.Type), ev.Store, ev.Register, ev.At, account(ev), b)
	}
	inserted := 0
	// One transaction: either every event of the batch is durable or none,
	// so an ack is never sent for a half-stored batch.
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		inserted = 0
		br := tx.SendBatch(ctx, batch)
		// The console's rollup counts the new events only, in this
		// transaction: a redelivered event adds nothing (stats_pg.go).
		r := newRollup()
		for _, ev := range evs {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			if tag.RowsAffected() > 0 {
				inserted++
				r.add(ev)
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		return saveRollup(ctx, tx, r)
	})
	if err != nil {
		return 0, fmt.Errorf("store %d events: %w", len(evs), err)
	}
	return inserted, nil
}

func (s *Postgres) SaveStatus(ctx context.Context, st wire.Status, received time.Time) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("store status of %s/%s: %w", st.Store, st.Register, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO fleet (store, register, status, last_seen) VALUES ($1, $2, $3, $4)
		ON CONFLICT (store, register) DO UPDATE SET status = EXCLUDED.status, last_seen = EXCLUDED.last_seen`,
		st.Store, st.Register, b, received)
	if err != nil {
		return fmt.Errorf("store status of %s/%s: %w", st.Store, st.Register, err)
	}
	return nil
}

func (s *Postgres) Fleet(ctx context.Context) ([]Register, error) {
	rows, err := s.pool.Query(ctx, `SELECT store, register, status, last_seen FROM fleet ORDER BY store, register`)
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	out, err := scanRegisters(rows) // fleet_pg.go
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	return out, nil
}

// eventFilter is Query as SQL over events e, with q.args() as $1..$11.
const eventFilter = `($1 = '' OR e.store = $1) AND ($2 = '' OR e.register = $2) AND ($3 = '' OR e.account = $3)
	AND (cardinality($4::text[]) = 0 OR e.type = ANY($4)) AND ($5::timestamptz IS NULL OR e.at >= $5)
	AND ($7 = '' OR (e.at, e.id) > ($5, $7))
	AND ($8::timestamptz IS NULL OR e.at < $8 OR ($9 <> '' AND e.at = $8 AND e.id < $9))
	AND ($10 = '' OR e.body->'decision'->'rules' @> jsonb_build_array(jsonb_build_object('id', $10::text)) OR e.body->'chain'->>'rule' = $10)
	AND ($11 = '' OR e.body->'decision'->>'outcome' = $11)`

// order is the ORDER BY of a listing in q's direction.
func (q Query) order() string {
	if q.Desc {
		return ` ORDER BY e.at DESC, e.id DESC`
	}
	return ` ORDER BY e.at, e.id`
}

func (q Query) args() []any {
	types := make([]string, len(q.Types))
	for i, t := range q.Types {
		types[i] = string(t)
	}
	var since, until *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	if !q.Until.IsZero() {
		until = &q.Until
	}
	return []any{q.Store, q.Register, q.Account, types, since, q.limit(), q.After, until, q.Before, q.Rule, q.Outcome}
}

func (s *Postgres) Events(ctx context.Context, q Query) ([]event.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT e.body FROM events e WHERE `+eventFilter+q.order()+` LIMIT $6`, q.args()...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	var out []event.Event
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		ev, err := event.Parse(body)
		if err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return out, nil
}

func (s *Postgres) Alerts(ctx context.Context, q Query) ([]Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT e.body, r.body FROM events e `+resolutionJoin+`
		WHERE `+eventFilter+q.order()+` LIMIT $6`, alertQuery(q).args()...)
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	var out []Alert
	for rows.Next() {
		var body, res []byte
		if err := rows.Scan(&body, &res); err != nil {
			return nil, fmt.Errorf("query alerts: %w", err)
		}
		a, err := pgAlert(body, res)
		if err != nil {
			return nil, fmt.Errorf("query alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	return out, nil
}

// resolutionJoin finds r, the first resolution of alert e's sale.
const resolutionJoin = `LEFT JOIN LATERAL (SELECT body FROM events r
			WHERE r.type = 'resolution' AND r.store = e.store AND r.register = e.register AND r.body->>'saleId' = e.body->>'saleId'
			ORDER BY r.at, r.id LIMIT 1) r ON true`

// pgAlert makes an alert from its event's body and its first resolution's
// (nil when there is none).
func pgAlert(body, res []byte) (Alert, error) {
	ev, err := event.Parse(body)
	if err != nil {
		return Alert{}, err
	}
	var r *event.Event
	if res != nil {
		rev, err := event.Parse(res)
		if err != nil {
			return Alert{}, fmt.Errorf("resolution of %s: %w", ev.ID, err)
		}
		r = &rev
	}
	return newAlert(ev, r), nil
}

func (s *Postgres) DenylistChange(ctx context.Context, c ListChange) (wire.ListVersion, error) {
	var seq int64
	var epoch string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The row lock on denylist_seq orders concurrent changes.
		if err := tx.QueryRow(ctx, `UPDATE denylist_seq SET seq = seq + 1 RETURNING epoch, seq`).Scan(&epoch, &seq); err != nil {
			return err
		}
		rec := c.record(wire.ListVersion{Epoch: epoch, Seq: uint64(seq)})
		if len(c.Add) > 0 {
			// An entry names the record of the change that last added it:
			// who, when and why (lists_pg.go).
			if _, err := tx.Exec(ctx, `INSERT INTO denylist (account, added, event_id) SELECT unnest($1::text[]), $2, $3
				ON CONFLICT (account) DO UPDATE SET added = EXCLUDED.added, event_id = EXCLUDED.event_id`, c.Add, c.At, rec.ID); err != nil {
				return err
			}
		}
		if len(c.Remove) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM denylist WHERE account = ANY($1)`, c.Remove); err != nil {
				return err
			}
		}
		if err := saveDetails(ctx, tx, c); err != nil { // chain_pg.go
			return err
		}
		return insertEvent(ctx, tx, rec)
	})
	if err != nil {
		return wire.ListVersion{}, fmt.Errorf("change denylist: %w", err)
	}
	return wire.ListVersion{Epoch: epoch, Seq: uint64(seq)}, nil
}

func (s *Postgres) Denylist(ctx context.Context) (wire.ListVersion, []string, error) {
	var seq int64
	var epoch string
	var accounts []string
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT epoch, seq FROM denylist_seq`).Scan(&epoch, &seq); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT account FROM denylist ORDER BY account`)
		if err != nil {
			return err
		}
		accounts, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return wire.ListVersion{}, nil, fmt.Errorf("read denylist: %w", err)
	}
	return wire.ListVersion{Epoch: epoch, Seq: uint64(seq)}, accounts, nil
}

func (s *Postgres) Close() error { s.pool.Close(); return nil }
