package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/bench/internal/agentproc"
)

// TestMeasure builds posguard, prepares a state file with a small denylist
// and measures the real agent on it: the daemon must start, answer
// /healthz, deny the sale of a listed account, stop on SIGTERM and be
// reported with plausible figures, and the entries must still be in the
// state file the agent had open.
func TestMeasure(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc: ", err)
	}
	dir := t.TempDir()
	bin, err := agentproc.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	mc := measureConfig{
		bin:     bin,
		label:   "posguard",
		policy:  "../../../policy/testdata/chain-default.yaml",
		settle:  200 * time.Millisecond,
		startTO: 15 * time.Second,
	}
	if err := prepare(dir, mc.policy, 1000, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r, err := measure(mc, dir, 1000, i)
		if err != nil {
			t.Fatal(err)
		}
		if r.start <= 0 || r.start > mc.startTO || r.startCPU <= 0 || r.startCPU > mc.startTO {
			t.Errorf("start time %v (CPU %v) is not plausible", r.start, r.startCPU)
		}
		for _, rss := range []uint64{r.rss, r.rssDecided} {
			if rss < 1<<20 || rss > 1<<32 {
				t.Errorf("RSS %d bytes is not plausible", rss)
			}
		}
		if r.heap == 0 || r.heap > r.rssDecided {
			t.Errorf("heap %d bytes is not plausible next to RSS %d", r.heap, r.rssDecided)
		}
	}
	s, err := state.Open(filepath.Join(dir, "state.db"), options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last := 999
	if !s.Denylisted(saleAccount(1)) || !s.Denylisted(fmt.Sprintf("%016x%016x", last, uint64(last)*0x9E3779B97F4A7C15)) || s.DenylistSeq() != 1 {
		t.Error("the prepared denylist is not in the state file")
	}
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{{"-entries", "x"}, {"-entries", "-1"}, {"-rounds", "0"}, {"extra"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}
