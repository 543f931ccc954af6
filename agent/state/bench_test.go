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
// entries: the time a restarted agent needs before it can decide. cpu-ns/op
// is the process's CPU time per open (all threads, bbolt's check included),
// steadier than ns/op on a shared machine.
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
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	_, measured := processCPU()
	for range b.N {
		c0, _ := processCPU()
		s, err := Open(path, testOptions())
		if err != nil {
			b.Fatal(err)
		}
		c1, _ := processCPU()
		cpu += c1 - c0
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	if measured {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkDenylisted looks accounts up in a 1,000,000-entry denylist:
// absent (every sale but a listed account's: the in-memory index alone),
// with a delta's overlay, and present (the index, then the file).
func BenchmarkDenylisted(b *testing.B) {
	s, _ := newStore(b)
	accounts := denyAccounts(1_000_000)
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, time.Now(), accounts); err != nil {
		b.Fatal(err)
	}
	absent := make([]string, 1024)
	for i := range absent {
		absent[i] = fmt.Sprintf("acct-%016x", uint64(i)*0x9E3779B97F4A7C15+1)
	}
	lookup := func(b *testing.B, list []string, want bool) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if s.Denylisted(list[i%len(list)]) != want {
				b.Fatal("wrong answer")
			}
			i++
		}
	}
	b.Run("absent", func(b *testing.B) { lookup(b, absent, false) })
	b.Run("present", func(b *testing.B) { lookup(b, accounts[:1024], true) })
	if err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: 2}, time.Now(), denyAccounts(1_000_900)[1_000_000:], nil); err != nil {
		b.Fatal(err)
	}
	b.Run("absent-overlay", func(b *testing.B) { lookup(b, absent, false) })
}
