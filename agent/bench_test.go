package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/policy"
)

// benchDecide measures POST /v1/decide end to end: HTTP, token
// verification, evaluation and the durable (fsynced) bbolt commit, with
// callers concurrent callers.
func benchDecide(b *testing.B, callers int) {
	f := newFixture(b)
	r := start(b, f.config(""), agent.Options{})
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = f.mint(fmt.Sprintf("bench-%d", i), nil)
	}
	var next atomic.Int64
	decide := func() {
		i := next.Add(1) - 1
		res, code := r.decide(b, toks[i], line(onigiri, 1), line(coffee, 2))
		if code != http.StatusOK || res.Outcome != policy.Allow {
			b.Errorf("decision %d: %d %s", i, code, res.Outcome)
		}
	}
	b.ResetTimer()
	runCallers(b, callers, decide)
}

func BenchmarkDecideHTTP(b *testing.B)          { benchDecide(b, 1) }
func BenchmarkDecideHTTPParallel8(b *testing.B) { benchDecide(b, 8) }

// BenchmarkScanPassThrough measures an item scan from the simulated
// scanner's pty through the agent to the POS pty.
func BenchmarkScanPassThrough(b *testing.B) {
	r := newPTYRig(b, "")
	want := len(posItem(onigiri))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	for range b.N {
		if err := r.scn.Scan(ctx, scan.EAN13, []byte(onigiri)); err != nil {
			b.Fatal(err)
		}
		if _, err := r.pos.Next(ctx, want); err != nil {
			b.Fatal(err)
		}
	}
}

// benchDecideDirect is benchDecide without HTTP: verification, evaluation
// and the durable commit through Agent.Decide.
func benchDecideDirect(b *testing.B, callers int) {
	f := newFixture(b)
	r := start(b, f.config(""), agent.Options{})
	toks := make([][]byte, b.N)
	for i := range toks {
		toks[i] = []byte(f.mint(fmt.Sprintf("direct-%d", i), nil))
	}
	lines := []agent.CartLine{line(onigiri, 1), line(coffee, 2)}
	var next atomic.Int64
	decide := func() {
		i := next.Add(1) - 1
		res, err := r.Decide(context.Background(), agent.Sale{Lines: lines, Token: toks[i]})
		if err != nil || res.Outcome != policy.Allow {
			b.Errorf("decision %d: %v %s", i, err, res.Outcome)
		}
	}
	b.ResetTimer()
	runCallers(b, callers, decide)
}

func BenchmarkDecide(b *testing.B)          { benchDecideDirect(b, 1) }
func BenchmarkDecideParallel8(b *testing.B) { benchDecideDirect(b, 8) }

// setCallers makes RunParallel use at least callers goroutines (it starts
// parallelism × GOMAXPROCS).
func setCallers(b *testing.B, callers int) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((callers + procs - 1) / procs)
}

// runCallers runs decide b.N times from one goroutine, or spread over
// callers concurrent ones.
func runCallers(b *testing.B, callers int, decide func()) {
	if callers == 1 {
		for range b.N {
			decide()
		}
		return
	}
	setCallers(b, callers)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			decide()
		}
	})
}
