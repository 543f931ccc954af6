package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

// TestStatsConcurrentRedelivery: HQ instances storing the same events at
// once, in different orders, count each once and never deadlock on the
// rollup's rows.
func TestStatsConcurrentRedelivery(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		var evs []event.Event
		for i := 1; i <= 40; i++ {
			evs = append(evs, fired(fmt.Sprintf("s%d", i%5), uint64(i), t0.Add(time.Duration(i)*7*time.Minute), policy.Deny, 100, "r", fmt.Sprintf("q%d", i%3)))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := 0; w < 4; w++ {
			batch := slices.Clone(evs)
			if w%2 == 1 {
				slices.Reverse(batch)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for part := range slices.Chunk(batch, 10) {
					if _, err := s.SaveEvents(context.Background(), part); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		hours, err := s.HourlyStats(context.Background(), StatsQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var dec, deny, yen int64
		for _, h := range hours {
			dec, deny, yen = dec+h.Decisions, deny+h.Denies, yen+h.YenRefused
		}
		if dec != 40 || deny != 40 || yen != 4000 {
			t.Errorf("counted %d decisions, %d denies, %d yen; want 40, 40, 4000", dec, deny, yen)
		}
		rules, err := s.RuleStats(context.Background(), StatsQuery{Limit: 100})
		if err != nil || len(rules) != 4 || rules[0] != (RuleStats{Rule: "r", Fired: 40}) {
			t.Errorf("rule stats %+v, %v", rules, err)
		}
	})
}

// TestAlertFilters: rule, outcome, until, newest first and its cursor.
func TestAlertFilters(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var evs []event.Event
		for i := 1; i <= 6; i++ {
			out, rule := policy.Review, "velocity"
			if i%2 == 0 {
				out, rule = policy.Deny, "cartons"
			}
			ev := fired("s1", uint64(i), t0.Add(time.Duration(i)*time.Minute), out, 1000, rule)
			ev.Type = event.Alert
			if i >= 5 {
				ev.At = t0.Add(5 * time.Minute) // 5 and 6 share a time: the cursor's id part
			}
			evs = append(evs, ev)
		}
		if _, err := s.SaveEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		id := func(i ...int) []string {
			out := []string{}
			for _, n := range i {
				out = append(out, evs[n-1].ID)
			}
			return out
		}
		for _, tt := range []struct {
			name string
			q    Query
			want []string
		}{
			{"rule", Query{Rule: "cartons"}, id(2, 4, 6)},
			{"outcome", Query{Outcome: "review"}, id(1, 3, 5)},
			{"rule and outcome disagree", Query{Rule: "cartons", Outcome: "review"}, id()},
			{"until is exclusive", Query{Until: t0.Add(3 * time.Minute)}, id(1, 2)},
			{"range", Query{Since: t0.Add(2 * time.Minute), Until: t0.Add(4 * time.Minute)}, id(2, 3)},
			{"newest first", Query{Desc: true, Limit: 3}, id(6, 5, 4)},
			{"newest first, next page", Query{Desc: true, Until: evs[4].At, Before: evs[4].ID, Limit: 3}, id(4, 3, 2)},
			{"newest first within since", Query{Desc: true, Since: t0.Add(4 * time.Minute)}, id(6, 5, 4)},
			{"oldest first, until with before", Query{Until: evs[5].At, Before: evs[5].ID}, id(1, 2, 3, 4, 5)},
		} {
			got, err := s.Alerts(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range got {
				ids = append(ids, a.ID)
			}
			if ids == nil {
				ids = []string{}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, ids, tt.want)
			}
		}
	})
}

// TestAlertFeed: alerts in storing order (not their own time), each once,
// from any position, filtered; FeedEnd starts after what is stored.
func TestAlertFeed(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		early := alertEv("s1", "r1", 1, policy.Deny)
		if _, err := s.SaveEvents(ctx, []event.Event{early}); err != nil {
			t.Fatal(err)
		}
		end, err := s.FeedEnd(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckFeedPos(end); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AlertFeed(ctx, Query{}, end, 10); err != nil || len(got) != 0 {
			t.Fatalf("feed after its end: %+v, %v", got, err)
		}
		// An alert from a register's outbox, older than the first, stored
		// later; a decision (not an alert); another store's alert.
		late := alertEv("s1", "r2", 1, policy.Review)
		late.At = t0.Add(-time.Hour)
		other := alertEv("s2", "r1", 3, policy.Deny)
		time.Sleep(2 * time.Millisecond) // PostgreSQL positions are the storing transaction's clock
		if _, err := s.SaveEvents(ctx, []event.Event{late, decision("s1", "r1", 2, t0, "a", policy.Deny)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		if _, err := s.SaveEvents(ctx, []event.Event{other, late}); err != nil {
			t.Fatal(err)
		}
		got, err := s.AlertFeed(ctx, Query{}, end, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != late.ID || got[1].ID != other.ID {
			t.Fatalf("feed after the first alert: %+v; want %s then %s", got, late.ID, other.ID)
		}
		// Paging on by the positions, one at a time.
		next, err := s.AlertFeed(ctx, Query{}, got[0].Pos, 1)
		if err != nil || len(next) != 1 || next[0].ID != other.ID || next[0].Pos != got[1].Pos {
			t.Fatalf("feed after %s: %+v, %v", got[0].Pos, next, err)
		}
		if got, err := s.AlertFeed(ctx, Query{Store: "s2", Outcome: "deny"}, end, 10); err != nil || len(got) != 1 || got[0].ID != other.ID || got[0].State != AlertDenied {
			t.Fatalf("filtered feed: %+v, %v", got, err)
		}
		// Rewound, the feed shows again what came within FeedOverlap on
		// PostgreSQL (readers drop what they have); on bbolt nothing.
		back, err := FeedRewind(got[1].Pos)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.AlertFeed(ctx, Query{}, back, 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, pg := s.(*Postgres); pg && len(again) != 3 || !pg && len(again) != 0 {
			t.Errorf("rewound feed: %d alerts", len(again))
		}
		if _, err := s.AlertFeed(ctx, Query{}, "x1", 10); !errors.Is(err, ErrFeedPos) {
			t.Errorf("a bad position: %v, want ErrFeedPos", err)
		}
	})
}

func TestFeedPos(t *testing.T) {
	for _, tt := range []struct{ in, err string }{
		{"s0", ""},
		{"s18446744073709551615", ""},
		{"t1700000000000000.czEvcjEvZTEvMQ", ""},
		{"t1700000000000000.", ""},
		{"", "want s… (bbolt) or t… (PostgreSQL)"},
		{"s", "want s and a sequence number"},
		{"s-1", "want s and a sequence number"},
		{"t12", "want t, microseconds, a dot and an id"},
		{"t-5.aWQ", "microseconds: want a non-negative integer"},
		{"t5.a+b", "id: want unpadded base64url"},
	} {
		err := CheckFeedPos(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case tt.err != "" && (err == nil || !errors.Is(err, ErrFeedPos) || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: %v, want %q", tt.in, err, tt.err)
		case err == nil:
			p, _ := parseFeedPos(tt.in)
			if p.String() != tt.in {
				t.Errorf("%q reads back as %q", tt.in, p.String())
			}
		}
	}
}

// FuzzFeedPos: a position from a client either reads back as itself or
// is refused with a reason; never a panic.
func FuzzFeedPos(f *testing.F) {
	for _, s := range []string{"s0", "s42", "t1700000000000000.czEvcjEvZTEvMQ", "t0.", "tx.y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseFeedPos(s)
		if err != nil {
			if !errors.Is(err, ErrFeedPos) {
				t.Fatalf("%q: error %v is not ErrFeedPos", s, err)
			}
			return
		}
		if q, err := parseFeedPos(p.String()); err != nil || q != p {
			t.Fatalf("%q: %+v reads back as %+v, %v", s, p, q, err)
		}
		if _, err := FeedRewind(s); err != nil {
			t.Fatalf("%q: rewind: %v", s, err)
		}
	})
}
