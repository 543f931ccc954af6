package board

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2019, 7, 3, 14, 0, 0, 0, time.UTC)

func review(id string, at time.Time) Alert {
	return Alert{ID: id, ReviewID: "sale-" + id, Register: "R1", At: at, Outcome: "review", Deadline: at.Add(2 * time.Minute)}
}

func TestReviewLifecycle(t *testing.T) {
	type step struct {
		name      string
		do        func(b *Board) (Alert, bool)
		wantOK    bool
		wantState string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"approve after send", []step{
			{"add", func(b *Board) (Alert, bool) { return b.Alert(review("a", t0), t0) }, true, Open},
			{"dup add ignored", func(b *Board) (Alert, bool) { return b.Alert(review("a", t0), t0) }, false, Open},
			{"send", func(b *Board) (Alert, bool) { return b.MarkSent("R1", "sale-a", t0.Add(time.Second)) }, true, Sent},
			{"approve", func(b *Board) (Alert, bool) {
				return b.Resolve(Resolution{Register: "R1", ReviewID: "sale-a", Action: "approve", By: "m", At: t0.Add(2 * time.Second)})
			}, true, Approved},
			{"dup resolution ignored", func(b *Board) (Alert, bool) {
				return b.Resolve(Resolution{Register: "R1", ReviewID: "sale-a", Action: "approve", At: t0.Add(3 * time.Second)})
			}, false, Approved},
			{"no send after end", func(b *Board) (Alert, bool) { return b.MarkSent("R1", "sale-a", t0) }, false, Approved},
		}},
		{"register mismatch", []step{
			{"add", func(b *Board) (Alert, bool) { return b.Alert(review("a", t0), t0) }, true, Open},
			{"other register", func(b *Board) (Alert, bool) {
				return b.Resolve(Resolution{Register: "R2", ReviewID: "sale-a", Action: "reject", At: t0})
			}, false, ""},
			{"reject", func(b *Board) (Alert, bool) {
				return b.Resolve(Resolution{Register: "R1", ReviewID: "sale-a", Action: "reject", At: t0})
			}, true, Rejected},
		}},
		{"register reports timeout", []step{
			{"add", func(b *Board) (Alert, bool) { return b.Alert(review("a", t0), t0) }, true, Open},
			{"timeout", func(b *Board) (Alert, bool) {
				return b.Resolve(Resolution{Register: "R1", ReviewID: "sale-a", Action: "timeout", At: t0})
			}, true, TimedOut},
		}},
		{"late alert arrives already timed out", []step{
			{"add", func(b *Board) (Alert, bool) { return b.Alert(review("a", t0), t0.Add(3*time.Minute)) }, true, TimedOut},
		}},
		{"deny has no review state", []step{
			{"add", func(b *Board) (Alert, bool) {
				return b.Alert(Alert{ID: "d", Register: "R1", Outcome: "deny", At: t0}, t0)
			}, true, ""},
			{"cannot send", func(b *Board) (Alert, bool) { return b.MarkSent("R1", "", t0) }, false, ""},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := New("S1", 0)
			for _, s := range c.steps {
				a, ok := s.do(b)
				if ok != s.wantOK || a.State != s.wantState {
					t.Fatalf("%s: ok=%v state=%q, want ok=%v state=%q", s.name, ok, a.State, s.wantOK, s.wantState)
				}
			}
		})
	}
}

func TestExpire(t *testing.T) {
	b := New("S1", 0)
	b.Alert(review("a", t0), t0)
	b.Alert(review("b", t0.Add(time.Minute)), t0)
	b.MarkSent("R1", "sale-b", t0.Add(70*time.Second))
	if got := b.Expire(t0.Add(time.Minute), 15*time.Second); len(got) != 0 {
		t.Fatalf("nothing due yet, expired %v", got)
	}
	// b was sent at +70s and not answered in 15 s: back to open.
	got := b.Expire(t0.Add(90*time.Second), 15*time.Second)
	if len(got) != 1 || got[0].ID != "b" || got[0].State != Open || got[0].Detail != NoAnswer {
		t.Fatalf("at +90s: %+v", got)
	}
	got = b.Expire(t0.Add(2*time.Minute), 15*time.Second)
	if len(got) != 1 || got[0].ID != "a" || got[0].State != TimedOut || !got[0].ResolvedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("at +2m: %+v", got)
	}
	if b.Pending("R1", "sale-a") || !b.Pending("R1", "sale-b") {
		t.Fatal("pending states wrong after expiry")
	}
}

// Finished alerts are bounded; open reviews stay pinned however many
// alerts come after them.
func TestKeepPinsOpenReviews(t *testing.T) {
	b := New("S1", 3)
	b.Alert(review("old-open", t0), t0)
	for i := 0; i < 10; i++ {
		b.Alert(Alert{ID: fmt.Sprint("d", i), Register: "R1", Outcome: "deny", At: t0.Add(time.Duration(i+1) * time.Second)}, t0)
	}
	s := b.Snapshot()
	if len(s.Alerts) != 4 {
		t.Fatalf("kept %d alerts, want 3 finished + 1 open", len(s.Alerts))
	}
	if s.Alerts[0].ID != "d9" || s.Alerts[3].ID != "old-open" {
		t.Fatalf("order = %s … %s, want newest first", s.Alerts[0].ID, s.Alerts[3].ID)
	}
	if !b.Pending("R1", "sale-old-open") {
		t.Fatal("open review dropped")
	}
	// Dropped ids are forgotten; kept ones still de-duplicate.
	if _, ok := b.Alert(Alert{ID: "d9", Outcome: "deny", At: t0}, t0); ok {
		t.Fatal("kept alert re-added")
	}
}

func TestStatusIgnoresOlder(t *testing.T) {
	b := New("S1", 0)
	b.Status(Tile{Register: "R1", Online: true, At: t0.Add(time.Minute)})
	if _, ok := b.Status(Tile{Register: "R1", Online: false, At: t0}); ok {
		t.Fatal("older status applied")
	}
	if tl, ok := b.Status(Tile{Register: "R1", Online: false, At: t0.Add(2 * time.Minute)}); !ok || tl.Online {
		t.Fatal("newer status not applied")
	}
}

func BenchmarkAlert(b *testing.B) {
	bd := New("S1", 0)
	for i := 0; b.Loop(); i++ {
		bd.Alert(Alert{ID: fmt.Sprint(i), Register: "R1", Outcome: "deny", At: t0}, t0)
	}
}

// TestRestore: a board rebuilt from saved alerts keeps their order and
// review states; a sent review whose register never answered, and one whose
// deadline passed while the display was down, are settled by Expire.
func TestRestore(t *testing.T) {
	old := New("S001", 0)
	old.Alert(Alert{ID: "d", Register: "R1", At: t0, Outcome: "deny"}, t0)
	old.Alert(review("open", t0.Add(time.Second)), t0)
	old.Alert(review("sent", t0.Add(2*time.Second)), t0)
	old.MarkSent("R1", "sale-sent", t0.Add(3*time.Second))
	old.Alert(review("late", t0.Add(-time.Minute)), t0)
	saved := old.Alerts()

	b := New("S001", 0)
	restartAt := t0.Add(2 * time.Minute) // past "late"'s deadline, before the others'
	if n := b.Restore(saved, restartAt); n != 4 {
		t.Fatalf("restored %d, want 4", n)
	}
	if n := b.Restore(saved, restartAt); n != 0 {
		t.Errorf("restoring twice added %d", n)
	}
	got := b.Alerts()
	for i := range saved {
		if got[i].ID != saved[i].ID || got[i].State != saved[i].State {
			t.Errorf("alert %d: %+v, saved %+v", i, got[i], saved[i])
		}
	}
	changed := b.Expire(restartAt, 15*time.Second)
	states := map[string]string{}
	for _, a := range changed {
		states[a.ID] = a.State
	}
	if len(changed) != 2 || states["sent"] != Open || states["late"] != TimedOut {
		t.Errorf("after Expire: %v", states)
	}
	if !b.Pending("R1", "sale-open") {
		t.Error("open review not pending after restore")
	}
}
