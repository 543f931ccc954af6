package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/wire"
)

// The console's fleet queries on a fleet of 10,000 registers (1,000 stores
// of 10), half way through rolling out version 3: each reads a page of
// stores, one store, or the rollout counts, never the whole table's
// statuses.
const benchStores, benchPerStore = 1000, 10

func benchFleet(b *testing.B, s Store) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchStores*benchPerStore; i += 8 {
				st := fleetStatus(fmt.Sprintf("s%04d", i/benchPerStore), fmt.Sprintf("r%02d", i%benchPerStore), i%50 != 0, 2+int64(i%2))
				if i%97 == 0 {
					st.Refusal = &wire.Refusal{Subject: wire.SubjectPolicy, Reason: "bad_signature", Version: 3, At: t0}
				}
				if err := s.SaveStatus(context.Background(), st, t0.Add(time.Duration(i)*time.Second)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

func benchBackends(b *testing.B, f func(b *testing.B, s Store)) {
	b.Run("bolt", func(b *testing.B) {
		s, err := OpenBolt(filepath.Join(b.TempDir(), "hq.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchFleet(b, s)
		b.ResetTimer()
		f(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		s, err := OpenPostgres(context.Background(), testenv.PostgresURL(b))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchFleet(b, s)
		if _, err := s.pool.Exec(context.Background(), `ANALYZE fleet`); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		f(b, s)
	})
}

// BenchmarkFleetStores10k reads the first page of 100 stores and a page
// in the middle.
func BenchmarkFleetStores10k(b *testing.B) {
	benchBackends(b, func(b *testing.B, s Store) {
		for b.Loop() {
			for _, after := range []string{"", "s0500"} {
				page, err := s.FleetStores(context.Background(), after, 100)
				if err != nil || len(page) != 100 || page[0].Registers != benchPerStore {
					b.Fatalf("page after %q: %d stores, %v", after, len(page), err)
				}
			}
		}
	})
}

// BenchmarkFleetOf10k reads one store's registers.
func BenchmarkFleetOf10k(b *testing.B) {
	benchBackends(b, func(b *testing.B, s Store) {
		for b.Loop() {
			regs, err := s.FleetOf(context.Background(), "s0777", "", 1000)
			if err != nil || len(regs) != benchPerStore {
				b.Fatalf("s0777: %d registers, %v", len(regs), err)
			}
		}
	})
}

// BenchmarkRollout10k counts the whole fleet's rollout of version 3 and
// lists 50 refused and 50 waiting registers.
func BenchmarkRollout10k(b *testing.B) {
	benchBackends(b, func(b *testing.B, s Store) {
		for b.Loop() {
			ro, err := s.Rollout(context.Background(), wire.ScopeAll, 3, 50)
			if err != nil || ro.Registers != benchStores*benchPerStore || len(ro.Refusals) != 50 {
				b.Fatalf("rollout: %+v, %v", ro, err)
			}
		}
	})
}
