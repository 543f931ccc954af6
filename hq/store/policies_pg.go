package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// policiesMigration records the policy versions (policies.go). The
// document is text, not jsonb, so it keeps the canonical field order.
const policiesMigration = `CREATE TABLE policy_versions (
		version    bigint PRIMARY KEY,
		name       text NOT NULL,
		scope      text NOT NULL,
		kid        text NOT NULL,
		digest     text NOT NULL,
		pushed_by  text NOT NULL,
		source     text NOT NULL,
		pushed_at  timestamptz NOT NULL,
		issued_at  timestamptz NOT NULL,
		expires_at timestamptz NOT NULL,
		bundle     bytea NOT NULL,
		document   text NOT NULL
	);`

func (s *Postgres) SavePolicy(ctx context.Context, v PolicyVersion) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO policy_versions
		(version, name, scope, kid, digest, pushed_by, source, pushed_at, issued_at, expires_at, bundle, document)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (version) DO NOTHING`,
		v.Version, v.Name, v.Scope, v.KID, v.Digest, v.PushedBy, v.Source, v.PushedAt, v.IssuedAt, v.ExpiresAt, v.Bundle, string(v.Document))
	if err != nil {
		return false, fmt.Errorf("save policy v%d: %w", v.Version, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var digest string
	if err := s.pool.QueryRow(ctx, `SELECT digest FROM policy_versions WHERE version = $1`, v.Version).Scan(&digest); err != nil {
		return false, fmt.Errorf("save policy v%d: %w", v.Version, err)
	}
	if digest != v.Digest {
		return false, fmt.Errorf("v%d: %w", v.Version, ErrPolicyConflict)
	}
	return false, nil
}

const policyColumns = `version, name, scope, kid, digest, pushed_by, source, pushed_at, issued_at, expires_at`

func scanPolicy(row pgx.Row, extra ...any) (PolicyVersion, error) {
	var v PolicyVersion
	err := row.Scan(append([]any{&v.Version, &v.Name, &v.Scope, &v.KID, &v.Digest, &v.PushedBy, &v.Source,
		&v.PushedAt, &v.IssuedAt, &v.ExpiresAt}, extra...)...)
	v.PushedAt, v.IssuedAt, v.ExpiresAt = v.PushedAt.UTC(), v.IssuedAt.UTC(), v.ExpiresAt.UTC()
	return v, err
}

func (s *Postgres) PolicyVersions(ctx context.Context, q PolicyQuery) ([]PolicyVersion, error) {
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	// The primary key's index, walked backwards: no scan beyond the page.
	rows, err := s.pool.Query(ctx, `SELECT `+policyColumns+` FROM policy_versions
		WHERE version < $1 ORDER BY version DESC LIMIT $2`, before, q.limit())
	if err != nil {
		return nil, fmt.Errorf("policy versions: %w", err)
	}
	defer rows.Close()
	out := []PolicyVersion{}
	for rows.Next() {
		v, err := scanPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("policy versions: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("policy versions: %w", err)
	}
	return out, nil
}

func (s *Postgres) PolicyVersion(ctx context.Context, version int64) (PolicyVersion, error) {
	var doc string
	var bundle []byte
	v, err := scanPolicy(s.pool.QueryRow(ctx, `SELECT `+policyColumns+`, bundle, document FROM policy_versions WHERE version = $1`, version), &bundle, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return PolicyVersion{}, fmt.Errorf("v%d: %w", version, ErrPolicyNotFound)
	}
	if err != nil {
		return PolicyVersion{}, fmt.Errorf("policy v%d: %w", version, err)
	}
	v.Bundle, v.Document = bundle, []byte(doc)
	return v, nil
}
