package display

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/syncbuf"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// TestStateSurvivesRestart: a review open when the display stops is open
// again, with its countdown, when it starts on the same state file; the
// register's later resolution still finds it. The registers' tiles come
// back from their retained status, not from the file.
func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "display.json")
	r := startRig(t, func(c *Config) { c.StateFile = path })
	now := time.Now().UTC().Truncate(time.Second)
	r.publish(wire.StatusTopic(testStore, "R1"), status(testStore, "R1", true, now), true)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Deny, now), false)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 2, policy.Review, now), false)
	r.waitPending("R1", "sale-R1-2")
	before := r.srv.board.Snapshot()

	r.restartServer("127.0.0.1:0")
	after := r.srv.board.Snapshot()
	if len(after.Alerts) != 2 || !r.srv.board.Pending("R1", "sale-R1-2") {
		t.Fatalf("after restart: %+v", after.Alerts)
	}
	for i := range before.Alerts {
		if b, a := before.Alerts[i], after.Alerts[i]; b.ID != a.ID || b.State != a.State || !b.Deadline.Equal(a.Deadline) || b.Amount != a.Amount {
			t.Errorf("alert %d before %+v\nafter %+v", i, b, a)
		}
	}
	waitTile(t, r, "R1")

	// The page sees the restored review, and its resolution lands.
	p := r.open()
	s := p.stream()
	var snap board.Snapshot
	json.Unmarshal(s.next(t, "snapshot").Data, &snap)
	if len(snap.Alerts) != 2 {
		t.Errorf("page snapshot after restart has %d alerts", len(snap.Alerts))
	}
	r.publish(wire.AlertsTopic(testStore, "R1"), resolutionEvent(testStore, "R1", 3, "sale-R1-2", "reject", now.Add(time.Minute)), false)
	var done board.Alert
	json.Unmarshal(s.next(t, "alert").Data, &done)
	if done.ReviewID != "sale-R1-2" || done.State != board.Rejected {
		t.Errorf("resolution after restart: %+v", done)
	}

	// Stopping saves the resolution too.
	r.stopServer()
	doc, err := parseState(readFile(t, path), testStore)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Alerts) != 2 || doc.Alerts[1].State != board.Rejected {
		t.Errorf("saved at shutdown: %+v", doc.Alerts)
	}
}

func waitTile(t *testing.T, r *rig, reg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, tile := range r.srv.board.Snapshot().Registers {
			if tile.Register == reg && tile.Online {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tile %s never came back", reg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAlertsWhileDownArriveAfterRestart: with a state file the display
// keeps its MQTT session, so an alert a register publishes while the
// display is stopped is waiting for it when it starts again.
func TestAlertsWhileDownArriveAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "display.json")
	r := startRig(t, func(c *Config) { c.StateFile = path })
	firstID := r.srv.clientID
	now := time.Now().UTC().Truncate(time.Second)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Review, now), false)
	r.waitPending("R1", "sale-R1-1")

	r.stopServer()
	r.publish(wire.AlertsTopic(testStore, "R2"), alertEvent(testStore, "R2", 9, policy.Review, now.Add(time.Second)), false)
	r.restartServer("127.0.0.1:0")
	if r.srv.clientID != firstID {
		t.Errorf("client id %q after restart, was %q", r.srv.clientID, firstID)
	}
	r.waitPending("R2", "sale-R2-9")
	if !r.srv.board.Pending("R1", "sale-R1-1") {
		t.Error("the review from before the restart is gone")
	}
}

// TestStateSavedWhileRunning: a change reaches the file within a couple of
// ticks, not only at shutdown (a killed display loses at most a second).
func TestStateSavedWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "display.json")
	r := startRig(t, func(c *Config) { c.StateFile = path })
	now := time.Now().UTC().Truncate(time.Second)
	r.publish(wire.AlertsTopic(testStore, "R2"), alertEvent(testStore, "R2", 5, policy.Review, now), false)
	r.waitPending("R2", "sale-R2-5")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil {
			if doc, err := parseState(b, testStore); err == nil && len(doc.Alerts) == 1 && doc.Alerts[0].State == board.Open {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the open review never reached the state file")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v %v", fi.Mode(), err)
	}
}

// TestStateFileUnreadable: a damaged file is moved aside, kept, and the
// display starts empty and says so; the other store's file is not taken.
func TestStateFileUnreadable(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":     "{{{",
		"other store": `{"format":"posguard-display-state/1","store":"S999","savedAt":"2026-11-25T00:00:00Z","alerts":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "display.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &syncbuf.Buffer{}
			r := startRig(t, func(c *Config) {
				c.StateFile = path
				c.Log = slog.New(slog.NewTextHandler(logs, nil))
			})
			if n := len(r.srv.board.Snapshot().Alerts); n != 0 {
				t.Errorf("%d alerts from an unreadable file", n)
			}
			aside, _ := filepath.Glob(path + ".bad-*")
			if len(aside) != 1 || string(readFile(t, aside[0])) != content {
				t.Errorf("moved aside: %v", aside)
			}
			if !strings.Contains(logs.String(), "moved aside") {
				t.Errorf("no word of it in the log:\n%s", logs.String())
			}
		})
	}
}

func TestParseStateRejects(t *testing.T) {
	valid := func(mod string) string {
		a := `{"id":"S001/R1/ep/1","reviewId":"sale-1","register":"R1","at":"2026-11-25T10:00:00Z","outcome":"review","rules":[],"cart":[],"amount":1,"account":"a***","state":"open"}`
		if mod != "" {
			a = strings.Replace(a, `"state":"open"`, mod, 1)
		}
		return `{"format":"posguard-display-state/1","store":"S001","savedAt":"2026-11-25T10:00:01Z","alerts":[` + a + `]}`
	}
	if _, err := parseState([]byte(valid("")), testStore); err != nil {
		t.Fatalf("valid file refused: %v", err)
	}
	tests := []struct{ name, in, say string }{
		{"empty", "", "not a display state file"},
		{"unknown field", strings.Replace(valid(""), `"format"`, `"extra":1,"format"`, 1), "unknown field"},
		{"trailing", valid("") + "{}", "trailing data"},
		{"format", strings.Replace(valid(""), "state/1", "state/9", 1), `format "posguard-display-state/9"`},
		{"store", strings.Replace(valid(""), `"store":"S001"`, `"store":"S002"`, 1), `store "S002"'s`},
		{"bad state", valid(`"state":"lost"`), `alerts[0]: review state "lost"`},
		{"deny with state", strings.Replace(valid(""), `"outcome":"review"`, `"outcome":"deny"`, 1), "a deny has no review state"},
		{"no id", strings.Replace(valid(""), `"id":"S001/R1/ep/1"`, `"id":""`, 1), "alerts[0]: id is required"},
		{"no review id", strings.Replace(valid(""), `"reviewId":"sale-1"`, `"reviewId":""`, 1), "needs its reviewId"},
		{"outcome", strings.Replace(valid(""), `"outcome":"review"`, `"outcome":"allow"`, 1), `outcome "allow"`},
		{"too big", strings.Repeat(" ", maxStateFile+1), "more than"},
		{"client id of another store", strings.Replace(valid(""), `"savedAt"`, `"clientId":"display/S002/ab12","savedAt"`, 1), "not one of store"},
		{"client id without suffix", strings.Replace(valid(""), `"savedAt"`, `"clientId":"display/S001/","savedAt"`, 1), "not one of store"},
		{"client id with a space", strings.Replace(valid(""), `"savedAt"`, `"clientId":"display/S001/a b","savedAt"`, 1), "not visible ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseState([]byte(tt.in), testStore)
			if err == nil || !strings.Contains(err.Error(), tt.say) {
				t.Errorf("got %v, want it to say %q", err, tt.say)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStateFileUnwritable: a state path that cannot be written fails the
// start with the reason, rather than losing every later save.
func TestStateFileUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "display.json")
	_, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, StateFile: path,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "save state") || !strings.Contains(err.Error(), "no-such-dir") {
		t.Errorf("New with an unwritable state file: %v", err)
	}
}
