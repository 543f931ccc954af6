package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

const caseCols = `id, account, stores, state, label, alerts, opened, updated`

func scanCase(row pgx.Row) (Case, error) {
	var c Case
	var id int64
	err := row.Scan(&id, &c.Account, &c.Stores, &c.State, &c.Label, &c.Alerts, &c.Opened, &c.Updated)
	c.ID = strconv.FormatInt(id, 10)
	c.Opened, c.Updated = c.Opened.UTC(), c.Updated.UTC()
	return c, err
}

func insertChange(ctx context.Context, tx pgx.Tx, id int64, ch CaseChange) error {
	_, err := tx.Exec(ctx, `INSERT INTO case_history (case_id, from_state, to_state, changed_by, note, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, ch.From, ch.To, ch.By, ch.Note, ch.At)
	return err
}

func (s *Postgres) OpenOrExtendCase(ctx context.Context, n NewCase) (string, bool, error) {
	var id int64
	var opened bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, opened = 0, false
		if n.Alert != nil {
			err := tx.QueryRow(ctx, `SELECT case_id FROM case_alerts WHERE event_id = $1`, n.Alert.ID).Scan(&id)
			if err == nil {
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		stores := []string{}
		if n.Store != "" {
			stores = append(stores, n.Store)
		}
		// The partial unique index makes two HQ instances opening a case
		// for the same account at once meet on one row.
		err := tx.QueryRow(ctx, `INSERT INTO cases (subject, account, stores, state, opened, updated)
			VALUES ($1, $2, $3, 'open', $4, $4)
			ON CONFLICT (subject) WHERE state = 'open' DO UPDATE SET updated = EXCLUDED.updated
			RETURNING id, xmax = 0`, n.subject(), n.Account, stores, n.Opened.At).Scan(&id, &opened)
		if err != nil {
			return err
		}
		if opened {
			if err := insertChange(ctx, tx, id, n.Opened); err != nil {
				return err
			}
		}
		if n.Alert == nil {
			return nil
		}
		b, err := event.Marshal(*n.Alert)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO case_alerts (event_id, case_id, at, body) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING`,
			n.Alert.ID, id, n.Alert.At, b)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Attached by a concurrent call meanwhile: report its case.
			return tx.QueryRow(ctx, `SELECT case_id FROM case_alerts WHERE event_id = $1`, n.Alert.ID).Scan(&id)
		}
		st := n.Alert.Store
		if st == event.HQStore {
			st = ""
		}
		_, err = tx.Exec(ctx, `UPDATE cases SET alerts = alerts + 1,
			stores = CASE WHEN $2 = '' OR $2 = ANY(stores) THEN stores ELSE array_append(stores, $2) END WHERE id = $1`, id, st)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("open or extend case: %w", err)
	}
	return strconv.FormatInt(id, 10), opened, nil
}

func pgCaseID(id string) (int64, error) {
	n, err := parseCaseID(id)
	if err != nil || n > 1<<62 {
		return 0, fmt.Errorf("case %q: %w", id, ErrCaseNotFound)
	}
	return int64(n), nil
}

func (s *Postgres) Case(ctx context.Context, id string) (CaseDetail, error) {
	n, err := pgCaseID(id)
	if err != nil {
		return CaseDetail{}, err
	}
	var d CaseDetail
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		c, err := scanCase(tx.QueryRow(ctx, `SELECT `+caseCols+` FROM cases WHERE id = $1`, n))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrCaseNotFound
		}
		if err != nil {
			return err
		}
		d = CaseDetail{Case: c, AlertEvents: []event.Event{}, History: []CaseChange{}}
		rows, err := tx.Query(ctx, `SELECT body FROM case_alerts WHERE case_id = $1 ORDER BY at, event_id`, n)
		if err != nil {
			return err
		}
		bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return err
		}
		for _, b := range bodies {
			ev, err := event.Parse(b)
			if err != nil {
				return err
			}
			d.AlertEvents = append(d.AlertEvents, ev)
		}
		rows, err = tx.Query(ctx, `SELECT from_state, to_state, changed_by, note, at FROM case_history WHERE case_id = $1 ORDER BY n`, n)
		if err != nil {
			return err
		}
		d.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CaseChange, error) {
			var ch CaseChange
			err := r.Scan(&ch.From, &ch.To, &ch.By, &ch.Note, &ch.At)
			ch.At = ch.At.UTC()
			return ch, err
		})
		return err
	})
	if err != nil {
		return CaseDetail{}, fmt.Errorf("read case %s: %w", id, err)
	}
	return d, nil
}

func (s *Postgres) CaseCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM cases GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count cases: %w", err)
	}
	out := map[string]int{}
	var state string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&state, &n}, func() error { out[state] = n; return nil }); err != nil {
		return nil, fmt.Errorf("count cases: %w", err)
	}
	return out, nil
}

func (s *Postgres) Cases(ctx context.Context, q CaseQuery) ([]Case, error) {
	var after int64
	if q.After != "" {
		n, err := pgCaseID(q.After)
		if err != nil {
			return nil, fmt.Errorf("list cases: after: %w", err)
		}
		after = n
	}
	rows, err := s.pool.Query(ctx, `SELECT `+caseCols+` FROM cases
		WHERE ($1 = '' OR state = $1) AND ($2 = '' OR $2 = ANY(stores)) AND ($3 = '' OR account = $3) AND id > $4
		ORDER BY id LIMIT $5`, q.State, q.Store, q.Account, after, q.limit())
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Case, error) { return scanCase(r) })
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	if out == nil {
		out = []Case{}
	}
	return out, nil
}

func (s *Postgres) MoveCase(ctx context.Context, id string, ch CaseChange) (Case, error) {
	n, err := pgCaseID(id)
	if err != nil {
		return Case{}, err
	}
	var c Case
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Compare and set: the row changes only from the state the caller
		// saw; a concurrent move waits for the row lock, then finds the
		// state changed.
		c, err = scanCase(tx.QueryRow(ctx, `UPDATE cases SET state = $2, updated = $3,
			label = CASE WHEN $4 <> '' THEN $4 ELSE label END,
			label_at = CASE WHEN $4 <> '' THEN $3 ELSE label_at END
			WHERE id = $1 AND state = $5 RETURNING `+caseCols, n, ch.To, ch.At, verdict(ch.To), ch.From))
		if errors.Is(err, pgx.ErrNoRows) {
			var cur string
			switch err := tx.QueryRow(ctx, `SELECT state FROM cases WHERE id = $1`, n).Scan(&cur); {
			case errors.Is(err, pgx.ErrNoRows):
				return ErrCaseNotFound
			case err != nil:
				return err
			}
			return &CaseConflictError{ID: id, Want: ch.From, Current: cur}
		}
		if err != nil {
			return err
		}
		return insertChange(ctx, tx, n, ch)
	})
	if err != nil {
		return Case{}, fmt.Errorf("case %s: %w", id, err)
	}
	return c, nil
}

func (s *Postgres) Labels(ctx context.Context) ([]Label, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (account) account, label, id, label_at FROM cases
		WHERE label <> '' AND account <> '' ORDER BY account, label_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Label, error) {
		var l Label
		var id int64
		err := r.Scan(&l.Account, &l.Label, &id, &l.At)
		l.Case, l.At = strconv.FormatInt(id, 10), l.At.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return out, nil
}

func (s *Postgres) AllowlistChange(ctx context.Context, c ListChange) (wire.ListVersion, error) {
	var seq int64
	var epoch string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The row lock on allowlist_seq orders concurrent changes.
		if err := tx.QueryRow(ctx, `UPDATE allowlist_seq SET seq = seq + 1 RETURNING epoch, seq`).Scan(&epoch, &seq); err != nil {
			return err
		}
		for _, a := range c.Add {
			d, err := json.Marshal(c.Details[a])
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO allowlist (account, detail, changed_by, reason, added) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (account) DO UPDATE SET detail = EXCLUDED.detail, changed_by = EXCLUDED.changed_by,
				reason = EXCLUDED.reason, added = EXCLUDED.added`, a, d, c.By, c.Reason, c.At); err != nil {
				return err
			}
		}
		if len(c.Remove) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM allowlist WHERE account = ANY($1)`, c.Remove); err != nil {
				return err
			}
		}
		return insertEvent(ctx, tx, c.allowRecord(wire.ListVersion{Epoch: epoch, Seq: uint64(seq)}))
	})
	if err != nil {
		return wire.ListVersion{}, fmt.Errorf("change allowlist: %w", err)
	}
	return wire.ListVersion{Epoch: epoch, Seq: uint64(seq)}, nil
}

func (s *Postgres) Allowlist(ctx context.Context) (wire.ListVersion, []string, map[string]wire.ListDetail, error) {
	var seq int64
	var epoch string
	var accounts []string
	details := map[string]wire.ListDetail{}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT epoch, seq FROM allowlist_seq`).Scan(&epoch, &seq); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT account, detail FROM allowlist ORDER BY account`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a string
			var d wire.ListDetail
			if err := rows.Scan(&a, &d); err != nil {
				return err
			}
			accounts = append(accounts, a)
			details[a] = d
		}
		return rows.Err()
	})
	if err != nil {
		return wire.ListVersion{}, nil, nil, fmt.Errorf("read allowlist: %w", err)
	}
	return wire.ListVersion{Epoch: epoch, Seq: uint64(seq)}, accounts, details, nil
}

var (
	_ Store = (*Postgres)(nil)
	_ Store = (*Bolt)(nil)
)
