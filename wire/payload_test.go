package wire_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/golden"
	"github.com/posguard/posguard/wire"
)

var at = time.Date(2019, 7, 3, 10, 15, 0, 0, time.UTC)

func goldenValues() map[string]any {
	return map[string]any{
		"status.json": wire.Status{
			Store: "s042", Register: "r1", Online: true, Version: "0.1.0", UptimeSec: 3600,
			Policy:       &wire.PolicyInfo{Name: "7pay-guard", Version: 7, ExpiresAt: at.Add(30 * 24 * time.Hour)},
			Refusal:      &wire.Refusal{Subject: wire.SubjectPolicy, Reason: "not_newer", Detail: "version 6 <= active 7", Version: 6, At: at},
			OutboxDepth:  12,
			Dropped:      3,
			Links:        wire.Links{Scanner: wire.LinkUp, POS: wire.LinkDown},
			LastDecision: &wire.DecisionSummary{SaleID: "s042-r1-000123", Outcome: "deny", Rules: []string{"tobacco-cartons", "fresh-topup"}, At: at},
			DenylistSeq:  41,
			Peers:        &wire.Peers{Reachable: true, LastFactAt: at.Add(-2 * time.Second), Pending: 1},
			At:           at,
		},
		"offline.json":         wire.Offline("s042", "r1", "0.1.0", at),
		"command_resolve.json": wire.Command{ID: "cmd-1", Type: wire.CmdResolve, Store: "s042", Register: "r1", ReviewID: "rev-9", Action: wire.Approve, PIN: "4711", By: "manager tanaka", At: at},
		"command_resync.json":  wire.Command{ID: "resync-41", Type: wire.CmdResync, Store: "s042", Register: "r1", HaveSeq: 41, At: at},
		"ack.json":             wire.Ack{IDs: []string{"ev-1", "ev-2"}},
		"delta.json":           wire.Delta{Epoch: "e1f0a9", Seq: 42, Add: []string{"acct-a", "acct-b"}, Remove: []string{"acct-c"}, IssuedAt: at},
		"snapshot.json":        wire.Snapshot{Epoch: "e1f0a9", Seq: 42, Accounts: []string{"acct-a", "acct-b"}, IssuedAt: at},
		"snapshot_empty.json":  wire.Snapshot{Epoch: "e1f0a9", Seq: 0, Accounts: []string{}, IssuedAt: at},
		"facts.json":           goodFacts(),
	}
}

type marshaler interface{ Marshal() ([]byte, error) }

func parse(name string, data []byte) (any, error) {
	switch {
	case name == "status.json", name == "offline.json":
		return wire.ParseStatus(data)
	case strings.HasPrefix(name, "command"):
		return wire.ParseCommand("posguard/v1/reg/s042/r1/cmd", data)
	case name == "ack.json":
		return wire.ParseAck(data)
	case name == "delta.json":
		return wire.ParseDelta(data)
	case strings.HasPrefix(name, "snapshot"):
		return wire.ParseSnapshot(data)
	case name == "facts.json":
		return wire.ParseFacts(factsTopic, data)
	}
	panic("no parser for " + name)
}

// The golden files pin the wire format: a renamed field breaks every
// register in the field, so it must break this test first.
func TestGolden(t *testing.T) {
	for name, v := range goldenValues() {
		t.Run(name, func(t *testing.T) {
			got, err := v.(marshaler).Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			path := filepath.Join("testdata", name)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatalf("Marshal gave invalid JSON: %v", err)
			}
			pretty.WriteByte('\n')
			golden.Check(t, path, pretty.Bytes())
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact.Bytes(), got) {
				t.Errorf("Marshal = %s\nwant %s", got, compact.Bytes())
			}
			back, err := parse(name, want)
			if err != nil {
				t.Fatalf("parse golden: %v", err)
			}
			if !reflect.DeepEqual(back, v) {
				t.Errorf("parse golden = %+v\nwant %+v", back, v)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	status := `{"store":"s1","register":"r1","online":true,"version":"1","uptimeSec":1,"outboxDepth":0,"dropped":0,"links":{"scanner":"up","pos":"up"},"denylistSeq":0,"at":"2019-07-03T10:15:00Z"}`
	resolve := `{"id":"c1","type":"resolve","store":"s042","register":"r1","reviewId":"rv","action":"approve","pin":"1234","by":"x","at":"2019-07-03T10:15:00Z"}`
	if _, err := wire.ParseStatus([]byte(status)); err != nil {
		t.Fatalf("base status refused: %v", err)
	}
	if _, err := wire.ParseCommand("posguard/v1/reg/s042/r1/cmd", []byte(resolve)); err != nil {
		t.Fatalf("base command refused: %v", err)
	}
	tests := []struct {
		name, kind, in, want string
	}{
		{"status unknown field", "status", strings.Replace(status, `"dropped":0`, `"dropped":0,"extra":1`, 1), `unknown field "extra"`},
		{"status missing online", "status", strings.Replace(status, `"online":true,`, ``, 1), "online: required"},
		{"status missing at", "status", strings.Replace(status, `,"at":"2019-07-03T10:15:00Z"`, ``, 1), "at: required"},
		{"status bad store", "status", strings.Replace(status, `"s1"`, `"s/1"`, 1), "not allowed"},
		{"status bad link", "status", strings.Replace(status, `"scanner":"up"`, `"scanner":"maybe"`, 1), "links.scanner"},
		{"status negative depth", "status", strings.Replace(status, `"outboxDepth":0`, `"outboxDepth":-1`, 1), "outboxDepth"},
		{"status trailing", "status", status + `{}`, "trailing data"},
		{"status not json", "status", `{"store":`, "unexpected EOF"},
		{"status empty", "status", ``, "empty message"},
		{"status null", "status", `null`, "online: required"},
		{"status too big", "status", strings.Repeat(" ", wire.MaxStatusBytes+1), "limit"},
		{"status wrong type", "status", strings.Replace(status, `"uptimeSec":1`, `"uptimeSec":"1"`, 1), "uptimeSec"},
		{"command other register", "cmd", strings.Replace(resolve, `"r1"`, `"r2"`, 1), "addressed to s042/r2"},
		{"command bad action", "cmd", strings.Replace(resolve, `approve`, `maybe`, 1), "action"},
		{"command short pin", "cmd", strings.Replace(resolve, `1234`, `12`, 1), "pin"},
		{"command letter pin", "cmd", strings.Replace(resolve, `1234`, `12a4`, 1), "non-digit"},
		{"command no review", "cmd", strings.Replace(resolve, `"reviewId":"rv",`, ``, 1), "reviewId"},
		{"command no by", "cmd", strings.Replace(resolve, `"by":"x",`, ``, 1), "by: required"},
		{"command no type", "cmd", strings.Replace(resolve, `"type":"resolve",`, ``, 1), "type: required"},
		{"command bad type", "cmd", strings.Replace(resolve, `"resolve"`, `"reboot"`, 1), "not resolve or resync"},
		{"command no id", "cmd", strings.Replace(resolve, `"id":"c1",`, ``, 1), "empty event id"},
		{"resync with pin", "cmd", strings.Replace(resolve, `"resolve"`, `"resync"`, 1), "resync carries no"},
		{"ack empty", "ack", `{"ids":[]}`, "at least one"},
		{"ack blank id", "ack", `{"ids":["a b"]}`, "not visible ASCII"},
		{"ack too many", "ack", `{"ids":[` + strings.Repeat(`"a",`, wire.MaxAckIDs) + `"a"]}`, "limit 1000"},
		{"delta seq 0", "delta", `{"epoch":"e1","seq":0,"add":["a"],"issuedAt":"2019-07-03T10:15:00Z"}`, "seq"},
		{"delta empty", "delta", `{"epoch":"e1","seq":1,"issuedAt":"2019-07-03T10:15:00Z"}`, "both empty"},
		{"delta add and remove", "delta", `{"epoch":"e1","seq":1,"add":["a"],"remove":["a"],"issuedAt":"2019-07-03T10:15:00Z"}`, "also added"},
		{"delta no issuedAt", "delta", `{"epoch":"e1","seq":1,"add":["a"]}`, "issuedAt: required"},
		{"delta control char", "delta", `{"epoch":"e1","seq":1,"add":["a\n"],"issuedAt":"2019-07-03T10:15:00Z"}`, "control character"},
		{"delta negative seq", "delta", `{"epoch":"e1","seq":-1,"add":["a"],"issuedAt":"2019-07-03T10:15:00Z"}`, "seq"},
		{"delta no epoch", "delta", `{"seq":1,"add":["a"],"issuedAt":"2019-07-03T10:15:00Z"}`, "epoch: required"},
		{"delta epoch with space", "delta", `{"epoch":"e 1","seq":1,"add":["a"],"issuedAt":"2019-07-03T10:15:00Z"}`, "epoch: byte 0x20"},
		{"snapshot no epoch", "snapshot", `{"seq":1,"accounts":[],"issuedAt":"2019-07-03T10:15:00Z"}`, "epoch: required"},
		{"snapshot long epoch", "snapshot", `{"epoch":"` + strings.Repeat("e", 65) + `","seq":1,"accounts":[],"issuedAt":"2019-07-03T10:15:00Z"}`, "epoch: longer than 64"},
		{"status bad reset", "status", strings.Replace(status, `"dropped":0`, `"dropped":0,"denylistEpoch":"e1","denylistReset":{"from":{"epoch":"","seq":0},"to":{"epoch":"e1","seq":1},"why":"cosmic rays","at":"2019-07-03T10:15:00Z"}`, 1), "denylistReset.why"},
		{"snapshot no accounts", "snapshot", `{"epoch":"e1","seq":1,"issuedAt":"2019-07-03T10:15:00Z"}`, "accounts: required"},
		{"snapshot long account", "snapshot", `{"epoch":"e1","seq":1,"accounts":["` + strings.Repeat("a", 129) + `"],"issuedAt":"2019-07-03T10:15:00Z"}`, "longer than 128"},
		{"snapshot empty account", "snapshot", `{"epoch":"e1","seq":1,"accounts":[""],"issuedAt":"2019-07-03T10:15:00Z"}`, "accounts[0]: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			switch tt.kind {
			case "status":
				_, err = wire.ParseStatus([]byte(tt.in))
			case "cmd":
				_, err = wire.ParseCommand("posguard/v1/reg/s042/r1/cmd", []byte(tt.in))
			case "ack":
				_, err = wire.ParseAck([]byte(tt.in))
			case "delta":
				_, err = wire.ParseDelta([]byte(tt.in))
			case "snapshot":
				_, err = wire.ParseSnapshot([]byte(tt.in))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestCommandWrongTopic(t *testing.T) {
	c := goldenValues()["command_resolve.json"].(wire.Command)
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"posguard/v1/reg/s042/r2/cmd", "posguard/v1/reg/s043/r1/cmd", "posguard/v1/reg/s042/r1/events", "posguard/v1/ack/s042/r1"} {
		if _, err := wire.ParseCommand(topic, data); err == nil {
			t.Errorf("command for s042/r1 accepted on %s", topic)
		}
	}
}

// The PIN crosses the wire but must not reach a log or an error text.
func TestPINNeverPrinted(t *testing.T) {
	c := goldenValues()["command_resolve.json"].(wire.Command)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("cmd", "command", c, "pin", c.PIN)
	log.Info("cmd", "command", &c)
	texts := map[string]string{
		"slog":  logs.String(),
		"%v":    fmt.Sprintf("%v", c),
		"%+v":   fmt.Sprintf("%+v", c),
		"%#v":   fmt.Sprintf("%#v", c),
		"%s":    fmt.Sprintf("%s", c.PIN),
		"%q":    fmt.Sprintf("%q", c.PIN),
		"%d":    fmt.Sprintf("%d", c.PIN),
		"%x":    fmt.Sprintf("%x", c.PIN),
		"&%+v":  fmt.Sprintf("%+v", &c),
		"error": fmt.Errorf("resolve %v failed", c).Error(),
	}
	for how, text := range texts {
		if strings.Contains(text, "4711") || strings.Contains(text, "34373131") {
			t.Errorf("%s shows the PIN: %s", how, text)
		}
	}
	if c.PIN.Reveal() != "4711" {
		t.Errorf("Reveal = %q", c.PIN.Reveal())
	}
	data, _ := c.Marshal()
	if !bytes.Contains(data, []byte(`"pin":"4711"`)) {
		t.Errorf("wire form lacks the PIN: %s", data)
	}
}

// A 1,000,000-entry snapshot (64-hex keys, the size it was bounded for)
// must fit MaxSnapshotBytes. Keys of one length make the size linear in the
// count, so two small snapshots give it exactly without building the big
// one (BenchmarkParseSnapshot1M does that).
func TestSnapshotSizedForAMillion(t *testing.T) {
	size := func(n int) int {
		accounts := make([]string, n)
		for i := range accounts {
			accounts[i] = fmt.Sprintf("%064x", i)
		}
		data, err := wire.Snapshot{Epoch: "e1f0a9", Seq: 1, Accounts: accounts, IssuedAt: at}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wire.ParseSnapshot(data); err != nil {
			t.Fatal(err)
		}
		return len(data)
	}
	s1, s2 := size(1000), size(2000)
	million := s1 + (s2-s1)*999
	if million > wire.MaxSnapshotBytes {
		t.Fatalf("snapshot of 1e6 keys is %d bytes > MaxSnapshotBytes %d", million, wire.MaxSnapshotBytes)
	}
}

func BenchmarkParseSnapshot1M(b *testing.B) {
	accounts := make([]string, 1_000_000)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%064x", i)
	}
	data, err := wire.Snapshot{Epoch: "e1f0a9", Seq: 1, Accounts: accounts, IssuedAt: at}.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := wire.ParseSnapshot(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStatus(b *testing.B) {
	data, err := goldenValues()["status.json"].(wire.Status).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := wire.ParseStatus(data); err != nil {
			b.Fatal(err)
		}
	}
}

// fuzzRoundTrip: a parser must never panic, and whatever it accepts must
// encode and parse back to the same value.
func fuzzRoundTrip[T marshaler](t *testing.T, data []byte, p func([]byte) (T, error)) {
	v, err := p(data)
	if err != nil {
		if err.Error() == "" {
			t.Fatal("rejection without a reason")
		}
		return
	}
	out, err := v.Marshal()
	if err != nil {
		t.Fatalf("accepted %q but cannot marshal it: %v", data, err)
	}
	back, err := p(out)
	if err != nil {
		t.Fatalf("re-parse of %s: %v", out, err)
	}
	if !reflect.DeepEqual(normalize(back), normalize(v)) {
		t.Fatalf("round trip changed %+v into %+v", v, back)
	}
}

// normalize compares times by instant: JSON keeps the offset, not the zone
// pointer.
func normalize(v any) string { b, _ := json.Marshal(v); return string(b) }

func FuzzParseStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.ParseStatus) })
}

func FuzzParseCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, data, func(b []byte) (wire.Command, error) {
			return wire.ParseCommand("posguard/v1/reg/s042/r1/cmd", b)
		})
	})
}

func FuzzParseAck(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.ParseAck) })
}

func FuzzParseDelta(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.ParseDelta) })
}

func FuzzParseSnapshot(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, wire.ParseSnapshot) })
}
