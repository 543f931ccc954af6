package wire_test

import (
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/wire"
)

// allowDelta and allowSnapshot give the allowlist parsers the Marshal the
// fuzz round trip needs.
type allowDelta wire.Delta

func (d allowDelta) Marshal() ([]byte, error) { return wire.MarshalAllowDelta(wire.Delta(d)) }

type allowSnapshot wire.Snapshot

func (s allowSnapshot) Marshal() ([]byte, error) { return wire.MarshalAllowSnapshot(wire.Snapshot(s)) }

func FuzzParseAllowDelta(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, data, func(b []byte) (allowDelta, error) {
			d, err := wire.ParseAllowDelta(b)
			return allowDelta(d), err
		})
	})
}

func FuzzParseAllowSnapshot(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, data, func(b []byte) (allowSnapshot, error) {
			s, err := wire.ParseAllowSnapshot(b)
			return allowSnapshot(s), err
		})
	})
}

func TestParseAllowDelta(t *testing.T) {
	const ok = `{"epoch":"e1","seq":3,"add":["acct-a"],"remove":["acct-b"],"issuedAt":"2019-07-03T10:15:00Z",` +
		`"details":{"acct-a":{"expiresAt":"2019-08-02T10:15:00Z","rule":"case:c-1","reason":"passed an ID check at store S014"}}}`
	d, err := wire.ParseAllowDelta([]byte(ok))
	if err != nil {
		t.Fatalf("valid delta refused: %v", err)
	}
	if got := d.Details["acct-a"]; got.Rule != "case:c-1" || !got.ExpiresAt.Equal(time.Date(2019, 8, 2, 10, 15, 0, 0, time.UTC)) {
		t.Fatalf("detail = %+v", got)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no details", `{"epoch":"e1","seq":3,"add":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z"}`,
			`allowlist delta: add[0] "acct-a": no detail (every allow entry needs expiresAt)`},
		{"no expiry", `{"epoch":"e1","seq":3,"add":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z","details":{"acct-a":{"rule":"case:1"}}}`,
			`allowlist delta: details["acct-a"].expiresAt: required`},
		{"detail of a removal", `{"epoch":"e1","seq":3,"remove":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z","details":{"acct-a":{"expiresAt":"2019-08-02T10:15:00Z"}}}`,
			`allowlist delta: details["acct-a"]: account is not in the list's entries`},
		{"detail of another account", `{"epoch":"e1","seq":3,"add":["acct-a"],"remove":["acct-b"],"issuedAt":"2019-07-03T10:15:00Z","details":{"acct-a":{"expiresAt":"2019-08-02T10:15:00Z"},"acct-b":{"expiresAt":"2019-08-02T10:15:00Z"}}}`,
			`allowlist delta: details["acct-b"]: account is not in the list's entries`},
		{"control in reason", `{"epoch":"e1","seq":3,"add":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z","details":{"acct-a":{"expiresAt":"2019-08-02T10:15:00Z","reason":"a\u0007"}}}`,
			`allowlist delta: details["acct-a"]: reason: control character U+0007 at 1`},
		{"bad event id", `{"epoch":"e1","seq":3,"add":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z","details":{"acct-a":{"expiresAt":"2019-08-02T10:15:00Z","events":[""]}}}`,
			`allowlist delta: details["acct-a"]: events[0]: empty event id`},
		{"seq 0 named as the allowlist", `{"epoch":"e1","seq":0,"add":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z"}`,
			`allowlist delta: seq: required, must be > 0`},
		{"unknown field", `{"epoch":"e1","seq":1,"add":["a"],"issuedAt":"2019-07-03T10:15:00Z","x":1}`,
			`allowlist delta: json: unknown field "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wire.ParseAllowDelta([]byte(tc.in))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParseAllowSnapshot(t *testing.T) {
	const ok = `{"epoch":"e1","seq":3,"accounts":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z","details":{"acct-a":{"expiresAt":"2019-08-02T10:15:00Z"}}}`
	if _, err := wire.ParseAllowSnapshot([]byte(ok)); err != nil {
		t.Fatalf("valid snapshot refused: %v", err)
	}
	if _, err := wire.ParseAllowSnapshot([]byte(`{"epoch":"e1","seq":3,"accounts":[],"issuedAt":"2019-07-03T10:15:00Z"}`)); err != nil {
		t.Fatalf("empty snapshot refused: %v", err)
	}
	_, err := wire.ParseAllowSnapshot([]byte(`{"epoch":"e1","seq":3,"accounts":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z"}`))
	if want := `allowlist snapshot: accounts[0] "acct-a": no detail`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want %s...", err, want)
	}
	// An entry's event ids are bounded.
	big := `{"epoch":"e1","seq":3,"accounts":["acct-a"],"issuedAt":"2019-07-03T10:15:00Z","details":{"acct-a":{"expiresAt":"2019-08-02T10:15:00Z","events":[` +
		strings.Repeat(`"e",`, wire.MaxDetailEvents) + `"e"]}}}`
	_, err = wire.ParseAllowSnapshot([]byte(big))
	if want := `allowlist snapshot: details["acct-a"]: events: 17 ids, limit 16`; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestCommandList(t *testing.T) {
	at := time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)
	c := wire.Command{ID: "r-1", Type: wire.CmdResync, Store: "s042", Register: "r1", List: wire.SubjectAllowlist, At: at}
	if err := c.Validate(); err != nil {
		t.Fatalf("allowlist resync refused: %v", err)
	}
	c.List = "policy"
	if err := c.Validate(); err == nil || err.Error() != `command: list "policy" is not denylist or allowlist` {
		t.Fatalf("err = %v", err)
	}
}
