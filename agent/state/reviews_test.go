package state

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
)

func TestReviewLifecycle(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	r1 := Review{ID: "rv1", SaleID: "s1", Token: []byte("PG1:AAA"), Created: t0, Deadline: t0.Add(5 * time.Minute)}
	r2 := Review{ID: "rv2", SaleID: "s2", Token: []byte("PG1:BBB"), Created: t0, Deadline: t0.Add(2 * time.Minute)}
	for _, r := range []Review{r1, r2, r1} { // the repeat is a no-op
		if err := s.PutReview(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	open, err := s.OpenReviews()
	if err != nil || len(open) != 2 || open[0].ID != "rv2" {
		t.Fatalf("OpenReviews = %+v, %v (want rv2 first: earliest deadline)", open, err)
	}
	s.Close()
	// A held token survives a restart, so an approval can still forward it.
	s = openT(t, path, testOptions())
	got, ok, err := s.Review("rv1")
	if err != nil || !ok || string(got.Token) != "PG1:AAA" || !got.Deadline.Equal(r1.Deadline) {
		t.Fatalf("Review after reopen = %+v %v %v", got, ok, err)
	}

	approve := event.ResolutionInfo{Action: event.Approve, By: "manager-2", At: t0.Add(time.Minute)}
	steps := []struct {
		name    string
		id      string
		res     event.ResolutionInfo
		changed bool
		err     error
		say     string
	}{
		{"approve", "rv1", approve, true, nil, ""},
		{"approve again", "rv1", approve, false, nil, ""},
		{"reject after approve", "rv1", event.ResolutionInfo{Action: event.Reject, At: t0.Add(2 * time.Minute)}, false, ErrAlreadyResolved, `resolved (approve) by "manager-2"`},
		{"unknown review", "rv9", approve, false, ErrNoReview, ""},
		{"bad action", "rv2", event.ResolutionInfo{Action: "shrug", At: t0}, false, nil, `action "shrug"`},
		{"no time", "rv2", event.ResolutionInfo{Action: event.Timeout}, false, nil, "time is required"},
		{"timeout", "rv2", event.ResolutionInfo{Action: event.Timeout, At: t0.Add(2 * time.Minute)}, true, nil, ""},
	}
	for _, st := range steps {
		r, changed, err := s.ResolveReview(ctx, st.id, st.res)
		switch {
		case st.err != nil && !errors.Is(err, st.err):
			t.Errorf("%s: err %v, want %v", st.name, err, st.err)
		case st.say != "" && (err == nil || !strings.Contains(err.Error(), st.say)):
			t.Errorf("%s: err %v, want it to say %q", st.name, err, st.say)
		case st.err == nil && st.say == "" && err != nil:
			t.Errorf("%s: %v", st.name, err)
		case changed != st.changed:
			t.Errorf("%s: changed = %v, want %v", st.name, changed, st.changed)
		case err == nil && (r.Resolution == nil || r.Resolution.Action != st.res.Action || r.Resolution.ReviewID != st.id):
			t.Errorf("%s: review %+v", st.name, r)
		}
	}
	// Exactly one resolution event per review, however often it was resolved.
	evs := pending(t, s)
	if got := types(evs); got != "1:resolution 2:resolution" {
		t.Fatalf("outbox %q", got)
	}
	if evs[0].Resolution.ReviewID != "rv1" || evs[0].Resolution.By != "manager-2" || evs[0].SaleID != "s1" {
		t.Errorf("resolution event %+v", evs[0].Resolution)
	}
	if open, _ := s.OpenReviews(); len(open) != 0 {
		t.Errorf("open reviews left: %+v", open)
	}
	if err := s.PutReview(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := s.Review("rv1"); r.Resolution == nil {
		t.Error("PutReview of a resolved id reopened it")
	}
	for _, bad := range []Review{{}, {ID: "x"}, {ID: "x", SaleID: "s"}, {ID: "x", SaleID: "s", Token: []byte("t")}} {
		if err := s.PutReview(ctx, bad); err == nil {
			t.Errorf("PutReview(%+v) accepted", bad)
		}
	}
}
