// Package testenv finds the real services integration tests run against
// (PostgreSQL, Mosquitto, Chromium) and decides whether a test that needs a
// missing one skips or fails: it skips, unless POSGUARD_INTEGRATION=1, which
// CI sets after installing them, so in CI nothing skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Integration reports whether integration tests must run.
func Integration() bool { return os.Getenv("POSGUARD_INTEGRATION") == "1" }

// Need skips t, or fails it under POSGUARD_INTEGRATION=1, when a service is
// missing.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if Integration() {
		t.Fatalf("POSGUARD_INTEGRATION=1 but %s is not available: %v", what, err)
	}
	t.Skipf("%s not available (set POSGUARD_INTEGRATION=1 to require it): %v", what, err)
}

// PostgresURL returns a URL to a fresh schema of its own in the test
// PostgreSQL database (POSGUARD_TEST_PG, default the local server's "test"
// database), dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("POSGUARD_TEST_PG")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	Need(t, "PostgreSQL at "+redact(base), err)
	var b [6]byte
	rand.Read(b[:])
	schema := "posguard_test_" + hex.EncodeToString(b[:])
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		// A connection of its own: a test may have restarted the server.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("POSGUARD_TEST_PG: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
