package state

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// BenchmarkCommit measures a durable decision commit (fsync on, bbolt
// defaults) for one caller and for 8 concurrent callers sharing fsyncs
// through the group commit; commits/tx is the batch size they made.
func BenchmarkCommit(b *testing.B) {
	run := func(b *testing.B, parallel bool) {
		s, _ := newStore(b)
		var n atomic.Int64
		one := func() {
			i := n.Add(1)
			req := newSale(fmt.Sprint("s", i), fmt.Sprint("acct-", i%500), t0.Add(time.Duration(i)*time.Millisecond), "tobacco", 2, 5400)
			o := policy.Allow
			if i%10 == 0 {
				o = policy.Review
			}
			if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(o), ReplayKey: fmt.Sprint("pg1:", i)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((8 + procs - 1) / procs)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					one()
				}
			})
		} else {
			for b.Loop() {
				one()
			}
		}
		if txs := s.group.txs.Load(); txs > 0 {
			b.ReportMetric(float64(s.group.calls.Load())/float64(txs), "commits/tx")
		}
	}
	b.Run("single", func(b *testing.B) { run(b, false) })
	b.Run("8-concurrent", func(b *testing.B) { run(b, true) })
}

// BenchmarkHistoryLookup is the decision hot path: a window lookup per
// rule on a register with a day of sales, half of them made at the store's
// other till, asked per register and per store.
func BenchmarkHistoryLookup(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	for i := range 2000 {
		req := newSale(fmt.Sprint("s", i), fmt.Sprint("acct-", i%300), t0.Add(time.Duration(i)*40*time.Second), "tobacco", 1, 5400)
		if i%2 == 0 {
			req.Register = "r1" // the store's other till
		}
		if _, err := s.Commit(ctx, Record{Request: req, Decision: decision(policy.Allow)}); err != nil {
			b.Fatal(err)
		}
	}
	now := t0.Add(2000 * 40 * time.Second)
	cats := []string{"tobacco", "e-cig"}
	b.Run("AccountSales", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.AccountSales("acct-7", "shinjuku-01", "", now.Add(-24*time.Hour), cats)
		}
	})
	b.Run("AccountSalesRegister", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.AccountSales("acct-7", "shinjuku-01", "r2", now.Add(-24*time.Hour), cats)
		}
	})
	b.Run("RegisterAccounts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.DistinctAccounts("shinjuku-01", "r2", now.Add(-time.Hour), cats, "acct-7")
		}
	})
	b.Run("StoreAccounts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.DistinctAccounts("shinjuku-01", "", now.Add(-time.Hour), cats, "acct-7")
		}
	})
	b.Run("Denylisted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Denylisted("acct-7")
		}
	})
}

// BenchmarkOpenDenylist opens a state file holding 1,000,000 denylist
// entries: the time a restarted agent needs before it can decide.
func BenchmarkOpenDenylist(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := Open(path, testOptions())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, time.Now(), denyAccounts(1_000_000)); err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ResetTimer()
	for range b.N {
		s, err := Open(path, testOptions())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
