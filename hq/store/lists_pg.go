package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// listsMigration lets the console page through the lists and their audit
// trail by index: each denylist entry names the record of the change that
// last added it (filled from the records for entries made before), the
// list changes' records have an index of their own among the events, and
// accounts are searched by prefix.
const listsMigration = `ALTER TABLE denylist ADD COLUMN event_id text COLLATE "C" NOT NULL DEFAULT '';
	UPDATE denylist d SET event_id = x.id FROM (
		SELECT DISTINCT ON (a) a, e.id FROM events e, jsonb_array_elements_text(e.body->'denylist'->'add') a
		WHERE e.type = 'denylist' ORDER BY a, e.at DESC, e.seq DESC) x
	WHERE d.account = x.a;
	CREATE INDEX events_list_changes ON events (at, id) WHERE type IN ('denylist', 'allowlist');
	CREATE INDEX denylist_account_prefix ON denylist (account text_pattern_ops);
	CREATE INDEX allowlist_account_prefix ON allowlist (account text_pattern_ops);`

// likePrefix is a LIKE pattern matching the strings that start with p.
func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p) + "%"
}

func (s *Postgres) DenylistEntries(ctx context.Context, q ListQuery) ([]ListEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.account, coalesce(e.at, d.added), coalesce(e.body->'denylist'->>'by', ''),
			coalesce(e.body->'denylist'->>'reason', ''), coalesce((e.body->'denylist'->>'seq')::bigint, 0), dd.detail
		FROM denylist d
		LEFT JOIN events e ON e.id = d.event_id AND d.event_id <> ''
		LEFT JOIN denylist_details dd ON dd.account = d.account
		WHERE ($1 = '' OR d.account LIKE $2) AND d.account > $3
		ORDER BY d.account LIMIT $4`, q.Prefix, likePrefix(q.Prefix), q.After, q.limit())
	if err != nil {
		return nil, fmt.Errorf("read denylist entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ListEntry, error) {
		var e ListEntry
		var seq int64
		var detail []byte
		if err := r.Scan(&e.Account, &e.Added, &e.By, &e.Reason, &seq, &detail); err != nil {
			return e, err
		}
		e.Added, e.Seq = e.Added.UTC(), uint64(seq)
		if detail != nil {
			if err := json.Unmarshal(detail, &e.Detail); err != nil {
				return e, fmt.Errorf("%s: detail: %w", e.Account, err)
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read denylist entries: %w", err)
	}
	return out, nil
}

func (s *Postgres) AllowlistEntries(ctx context.Context, q ListQuery) ([]ListEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT account, added, changed_by, reason, detail FROM allowlist
		WHERE ($1 = '' OR account LIKE $2) AND account > $3
		ORDER BY account LIMIT $4`, q.Prefix, likePrefix(q.Prefix), q.After, q.limit())
	if err != nil {
		return nil, fmt.Errorf("read allowlist entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ListEntry, error) {
		var e ListEntry
		err := r.Scan(&e.Account, &e.Added, &e.By, &e.Reason, &e.Detail)
		e.Added = e.Added.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read allowlist entries: %w", err)
	}
	return out, nil
}

// changeNamesPath finds an account among the added or removed accounts of
// a list change record, whichever member of the event holds the change.
const changeNamesPath = `$.* ? (@.add[*] == $a || @.remove[*] == $a)`

func (s *Postgres) ListChanges(ctx context.Context, q AuditQuery) ([]event.Event, error) {
	var before *time.Time
	if !q.Before.IsZero() {
		before = &q.Before.At
	}
	// The literal type list matches events_list_changes' predicate, so
	// the planner walks that index backwards whatever the parameters.
	rows, err := s.pool.Query(ctx, `SELECT body FROM events
		WHERE type IN ('denylist', 'allowlist') AND ($1 = '' OR type = $1)
			AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3))
			AND ($4 = '' OR jsonb_path_exists(body, '`+changeNamesPath+`', jsonb_build_object('a', $4::text)))
		ORDER BY at DESC, id DESC LIMIT $5`, string(q.Type), before, q.Before.ID, q.Account, pageLimit(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("read list changes: %w", err)
	}
	out, err := collectEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("read list changes: %w", err)
	}
	return out, nil
}

func collectEvents(rows pgx.Rows) ([]event.Event, error) {
	out := []event.Event{}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	for _, b := range bodies {
		ev, err := event.Parse(b)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func (s *Postgres) CaseAlerts(ctx context.Context, id string, q CaseAlertQuery) ([]event.Event, error) {
	n, err := pgCaseID(id)
	if err != nil {
		return nil, err
	}
	var after *time.Time
	if !q.After.IsZero() {
		after = &q.After.At
	}
	var out []event.Event
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM cases WHERE id = $1`, n).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return ErrCaseNotFound
		} else if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT body FROM case_alerts
			WHERE case_id = $1 AND ($2::timestamptz IS NULL OR (at, event_id) > ($2, $3))
			ORDER BY at, event_id LIMIT $4`, n, after, q.After.ID, pageLimit(q.Limit))
		if err != nil {
			return err
		}
		out, err = collectEvents(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read alerts of case %s: %w", id, err)
	}
	return out, nil
}

func (s *Postgres) EventsByID(ctx context.Context, ids []string) ([]event.Event, error) {
	if len(ids) == 0 {
		return []event.Event{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT body FROM events WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read events by id: %w", err)
	}
	out, err := collectEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("read events by id: %w", err)
	}
	return out, nil
}

func (s *Postgres) ListVersion(ctx context.Context, t event.Type) (wire.ListVersion, error) {
	table := "denylist_seq"
	if t == AllowlistChanged {
		table = "allowlist_seq"
	}
	var v wire.ListVersion
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT epoch, seq FROM `+table).Scan(&v.Epoch, &seq); err != nil {
		return v, fmt.Errorf("read %s version: %w", t, err)
	}
	v.Seq = uint64(seq)
	return v, nil
}
