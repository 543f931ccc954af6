package store

import (
	"context"
	"fmt"
	"time"
)

func (s *Postgres) FeedEnd(ctx context.Context) (string, error) {
	var now time.Time
	// The database's clock: every HQ instance reads the same one.
	if err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return "", fmt.Errorf("alert feed: %w", err)
	}
	return feedPos{at: now, pg: true}.String(), nil
}

func (s *Postgres) AlertFeed(ctx context.Context, q Query, pos string, limit int) ([]FeedAlert, error) {
	p, err := parseFeedPos(pos)
	if err != nil {
		return nil, err
	}
	if !p.pg {
		return nil, fmt.Errorf("%w %q: a bbolt position on a PostgreSQL store", ErrFeedPos, pos)
	}
	q = alertQuery(q)
	q.After, q.Before, q.Desc, q.Limit = "", "", false, limit
	rows, err := s.pool.Query(ctx, `SELECT e.received, e.body, r.body FROM events e `+resolutionJoin+`
		WHERE (e.received, e.id) > ($12, $13) AND `+eventFilter+` ORDER BY e.received, e.id LIMIT $6`,
		append(q.args(), p.at, p.id)...)
	if err != nil {
		return nil, fmt.Errorf("alert feed: %w", err)
	}
	var out []FeedAlert
	for rows.Next() {
		var at time.Time
		var body, res []byte
		if err := rows.Scan(&at, &body, &res); err != nil {
			return nil, fmt.Errorf("alert feed: %w", err)
		}
		a, err := pgAlert(body, res)
		if err != nil {
			return nil, fmt.Errorf("alert feed: %w", err)
		}
		out = append(out, FeedAlert{Alert: a, Pos: feedPos{at: at, id: a.ID, pg: true}.String()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert feed: %w", err)
	}
	return out, nil
}
