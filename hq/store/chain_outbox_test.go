package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"testing"
	"time"
)

func firingIDs(fs []ChainFiring) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

// A firing is kept with the observation that trips it, once by id; it is
// claimed by one owner at a time, again when the lease runs out or its
// owner releases it, never once done; a failed judge keeps nothing.
func TestChainOutbox(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		ob := func(id string) []ChainObs {
			return []ChainObs{{Rule: "hop", Key: "acct-1", Member: "S1", EventID: id, At: t0, Window: time.Hour}}
		}
		fire := func(ids ...string) func([]ChainSeen) ([]ChainFiring, error) {
			return func(seen []ChainSeen) ([]ChainFiring, error) {
				var out []ChainFiring
				for _, id := range ids {
					out = append(out, ChainFiring{ID: id, At: t0, Body: []byte(`{"firing":"` + id + `"}`)})
				}
				return out, nil
			}
		}
		// A judge that fails undoes the observation: nothing is kept.
		boom := errors.New("judge failed")
		if _, err := s.ChainObserve(ctx, ob("e/1"), func([]ChainSeen) ([]ChainFiring, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("failing judge: %v", err)
		}
		seen, err := s.ChainObserve(ctx, ob("e/1"), fire("f1"))
		if err != nil || !seen[0].New {
			t.Fatalf("after a failed judge the observation is new again: %+v, %v", seen, err)
		}
		// The same firing again (another instance, a replay) is kept once.
		if _, err := s.ChainObserve(ctx, ob("e/2"), fire("f1", "f2")); err != nil {
			t.Fatal(err)
		}
		got, err := s.ChainClaim(ctx, "a", time.Minute, 10)
		if err != nil || !slices.Equal(firingIDs(got), []string{"f1", "f2"}) || got[0].Tries != 1 || string(got[0].Body) != `{"firing": "f1"}` && string(got[0].Body) != `{"firing":"f1"}` {
			t.Fatalf("first claim = %+v, %v", got, err)
		}
		if got[0].At.Compare(t0) != 0 {
			t.Errorf("at = %s, want %s", got[0].At, t0)
		}
		if got, err := s.ChainClaim(ctx, "b", time.Minute, 10); err != nil || len(got) != 0 {
			t.Fatalf("claimed while leased: %+v, %v", got, err)
		}
		if err := s.ChainDone(ctx, "f2"); err != nil {
			t.Fatal(err)
		}
		// a restarts: its leases end; b may take what is not done.
		if err := s.ChainRelease(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		got, err = s.ChainClaim(ctx, "b", time.Millisecond, 10)
		if err != nil || !slices.Equal(firingIDs(got), []string{"f1"}) || got[0].Tries != 2 {
			t.Fatalf("after release = %+v, %v", got, err)
		}
		// b's short lease runs out: a takes it over.
		time.Sleep(20 * time.Millisecond)
		got, err = s.ChainClaim(ctx, "a", time.Minute, 10)
		if err != nil || !slices.Equal(firingIDs(got), []string{"f1"}) || got[0].Tries != 3 {
			t.Fatalf("after the lease ran out = %+v, %v", got, err)
		}
		if err := s.ChainDone(ctx, "f1"); err != nil {
			t.Fatal(err)
		}
		if err := s.ChainRelease(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ChainClaim(ctx, "b", time.Minute, 10); err != nil || len(got) != 0 {
			t.Fatalf("claimed when done: %+v, %v", got, err)
		}
		// Done firings go with the observations when pruned.
		if n, err := s.ChainPrune(ctx, time.Now().Add(time.Hour)); err != nil || n != 4 {
			t.Fatalf("prune = %d, %v; want 4 (2 observations, 2 firings)", n, err)
		}
	})
}

// Two owners claiming at once take each pending firing once between them.
func TestChainOutboxClaimRace(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		const n = 40
		var obs []ChainObs
		for i := range n {
			obs = append(obs, ChainObs{Rule: "hop", Key: fmt.Sprint("acct-", i), Member: "S1", EventID: fmt.Sprint("e/", i), At: t0, Window: time.Hour})
		}
		_, err := s.ChainObserve(ctx, obs, func(seen []ChainSeen) ([]ChainFiring, error) {
			var out []ChainFiring
			for i := range seen {
				out = append(out, ChainFiring{ID: fmt.Sprintf("f%02d", i), At: t0, Body: []byte(`{}`)})
			}
			return out, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		count := map[string]int{}
		var wg sync.WaitGroup
		for _, owner := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.ChainClaim(ctx, owner, time.Minute, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, f := range got {
						count[f.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(count) != n {
			t.Errorf("claimed %d firings, want %d", len(count), n)
		}
		for id, c := range count {
			if c != 1 {
				t.Errorf("%s claimed %d times", id, c)
			}
		}
	})
}

// chainStripe is FNV-1a as hash/fnv computes it.
func TestChainStripe(t *testing.T) {
	for _, k := range [][2]string{{"hop", "acct-1"}, {"tok", "issuer\x1ftoken"}, {"", ""}} {
		h := fnv.New32a()
		h.Write([]byte(k[0] + "\x1f" + k[1]))
		if got, want := chainStripe(k[0], k[1]), int32(h.Sum32()%chainLockStripes); got != want {
			t.Errorf("chainStripe%q = %d, want %d", k, got, want)
		}
	}
}
