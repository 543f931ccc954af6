package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/testenv"
)

// BenchmarkChainObservePostgres records and counts one ingest batch's
// observations (500 events, 5 rules) per op.
func BenchmarkChainObservePostgres(b *testing.B) {
	st, err := OpenPostgres(context.Background(), testenv.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchChainObserve(b, st)
}

// BenchmarkChainObserveBolt is BenchmarkChainObservePostgres on bbolt.
func BenchmarkChainObserveBolt(b *testing.B) {
	st, err := OpenBolt(filepath.Join(b.TempDir(), "hq.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchChainObserve(b, st)
}

func benchChainObserve(b *testing.B, st Store) {
	seq := 0
	b.ResetTimer()
	for range b.N {
		var obs []ChainObs
		for range 500 {
			seq++
			for r := range 5 {
				obs = append(obs, ChainObs{Rule: fmt.Sprint("rule-", r), Key: fmt.Sprint("acct-", seq%5000), Member: "s1",
					EventID: fmt.Sprint("s1/r1/e/", seq), At: t0.Add(time.Duration(seq) * time.Millisecond), Window: time.Hour})
			}
		}
		if _, err := st.ChainObserve(context.Background(), obs, nil); err != nil {
			b.Fatal(err)
		}
	}
}
