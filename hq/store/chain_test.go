package store

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/wire"
)

func members(s ChainSeen) []string {
	var out []string
	for _, h := range s.Others {
		out = append(out, h.Member)
	}
	return out
}

func TestChainObserveWindow(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		w := 30 * time.Minute
		ob := func(id, member string, at time.Time) ChainObs {
			return ChainObs{Rule: "hop", Key: "acct-1", Member: member, EventID: id, At: at, Window: w}
		}
		seen, err := s.ChainObserve(ctx, []ChainObs{ob("S1/r/e/1", "S1", t0), ob("S2/r/e/1", "S2", t0.Add(10*time.Minute))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Counted after the batch is in, both ways in time: each sees the
		// other.
		if !seen[0].New || !seen[1].New || !slices.Equal(members(seen[0]), []string{"S2"}) || !slices.Equal(members(seen[1]), []string{"S1"}) {
			t.Fatalf("seen = %+v", seen)
		}
		if seen[1].Others[0].EventID != "S1/r/e/1" {
			t.Errorf("hit event = %q", seen[1].Others[0].EventID)
		}
		// Exactly one window after the first: the boundary counts.
		seen, err = s.ChainObserve(ctx, []ChainObs{ob("S3/r/e/1", "S3", t0.Add(w))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := members(seen[0]); !slices.Equal(got, []string{"S1", "S2"}) {
			t.Errorf("at the boundary: %v, want S1 S2", got)
		}
		// One microsecond later the first is out.
		seen, err = s.ChainObserve(ctx, []ChainObs{ob("S4/r/e/1", "S4", t0.Add(w+time.Microsecond))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := members(seen[0]); !slices.Equal(got, []string{"S2", "S3"}) {
			t.Errorf("past the boundary: %v, want S2 S3", got)
		}
		// The same event again is not new, and sees every observation
		// within a window either side; another key sees nothing.
		seen, err = s.ChainObserve(ctx, []ChainObs{ob("S2/r/e/1", "S2", t0.Add(10*time.Minute)),
			{Rule: "hop", Key: "acct-2", Member: "S1", EventID: "S1/r/e/9", At: t0, Window: w}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[0].New || !seen[1].New || len(seen[1].Others) != 0 {
			t.Errorf("replay: %+v", seen)
		}
		if got := members(seen[0]); !slices.Equal(got, []string{"S1", "S3", "S4"}) {
			t.Errorf("replayed S2 sees %v, want S1 S3 S4", got)
		}
		n, err := s.ChainPrune(ctx, t0.Add(time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("prune = %d, %v; want 2 (acct-1 S1, acct-2 S1)", n, err)
		}
		seen, err = s.ChainObserve(ctx, []ChainObs{ob("S5/r/e/1", "S5", t0.Add(20*time.Minute))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := members(seen[0]); !slices.Equal(got, []string{"S2", "S3", "S4"}) {
			t.Errorf("after prune: %v, want S2 S3 S4", got)
		}
	})
}

// Two writers completing a count together: one of them always sees the
// other (the per-key lock), so a threshold is never missed.
func TestChainObserveConcurrent(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for round := range 20 {
			key := "acct-" + string(rune('a'+round))
			var wg sync.WaitGroup
			seen := make([][]ChainSeen, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					seen[i], err = s.ChainObserve(ctx, []ChainObs{{Rule: "hop", Key: key, Member: []string{"S1", "S2"}[i],
						EventID: key + "/" + string(rune('0'+i)), At: t0, Window: time.Hour}}, nil)
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if seen[0] == nil || seen[1] == nil {
				t.FailNow()
			}
			// Serialised per key: the second sees the first, which ran
			// before the second existed.
			if len(seen[0][0].Others)+len(seen[1][0].Others) != 1 {
				t.Fatalf("round %d: %+v %+v: want exactly one to see the other", round, seen[0], seen[1])
			}
		}
	})
}

func TestDenylistDetailsKept(t *testing.T) {
	check := func(t *testing.T, open func() Store) {
		ctx := context.Background()
		s := open()
		exp := t0.Add(24 * time.Hour)
		d := wire.ListDetail{ExpiresAt: exp, Rule: "hop", Reason: "3 stores", Events: []string{"S1/r/e/1"}}
		if _, err := s.DenylistChange(ctx, ListChange{Add: []string{"a1", "a2"}, By: "chain:hop", Reason: "r", At: t0,
			Details: map[string]wire.ListDetail{"a1": d}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = open() // the details survive a restart
		defer s.Close()
		got, err := s.DenylistDetails(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !got["a1"].ExpiresAt.Equal(exp) || got["a1"].Rule != "hop" || got["a1"].Events[0] != "S1/r/e/1" {
			t.Fatalf("details = %+v", got)
		}
		// A plain re-add makes the entry permanent; a removal drops it.
		if _, err := s.DenylistChange(ctx, ListChange{Add: []string{"a1"}, By: "ops", Reason: "manual", At: t0}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.DenylistDetails(ctx); len(got) != 0 {
			t.Errorf("after a plain add: %+v", got)
		}
		if _, err := s.DenylistChange(ctx, ListChange{Add: []string{"a3"}, By: "x", Reason: "r", At: t0,
			Details: map[string]wire.ListDetail{"a3": d}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DenylistChange(ctx, ListChange{Remove: []string{"a3"}, By: "hq", Reason: "expired", At: t0}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.DenylistDetails(ctx); len(got) != 0 {
			t.Errorf("after removal: %+v", got)
		}
	}
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hq.db")
		check(t, func() Store {
			s, err := OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := testenv.PostgresURL(t)
		check(t, func() Store {
			s, err := OpenPostgres(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}
