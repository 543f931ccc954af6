package hqsync

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// BenchmarkFactsPropagation measures the replay window: from a decision
// committed at R1 (its facts stored in the same transaction) to the token
// marked seen at R2, through the embedded broker on loopback. It reports
// p50 and p99 per fact; each fact is sent alone, as at a till.
func BenchmarkFactsPropagation(b *testing.B) {
	br, auth := embedtest.Start(b, "s1/r1", "s1/r2")
	till := func(reg string) (*state.Store, *Client) {
		st, err := state.Open(filepath.Join(b.TempDir(), reg+".db"), state.Options{Store: "s1", Register: reg, ShareFacts: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		c, err := New(Config{MQTT: auth.MQTT(br.URL(), "s1/"+reg), Store: "s1", Register: reg, State: st,
			Now:          func() time.Time { return now },
			ActivePolicy: func() int64 { return 0 }, OnPolicy: func(*policy.Policy) {},
			Status: func() wire.Status { return wire.Status{} }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
		return st, c
	}
	st1, c1 := till("r1")
	st2, c2 := till("r2")
	for !c1.Peers().Reachable || !c2.Peers().Reachable {
		time.Sleep(10 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := fmt.Sprintf("pg1:bench-%d", i)
		began := time.Now()
		_, err := st1.Commit(context.Background(), state.Record{Request: sale(i, "acct"),
			Decision: &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "p", Version: 1}}, ReplayKey: key})
		if err != nil {
			b.Fatal(err)
		}
		c1.Kick()
		for !st2.Seen(key) {
			runtime.Gosched()
		}
		lat = append(lat, time.Since(began))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}
