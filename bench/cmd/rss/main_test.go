package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/state"
)

// TestMeasure builds posguard, prepares a state file with a small denylist
// and measures the real agent on it: the daemon must start, run idle, stop
// on SIGTERM and be reported with a plausible RSS, and the entries must
// still be in the state file the agent had open.
func TestMeasure(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc: ", err)
	}
	dir := t.TempDir()
	bin, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	mc := measureConfig{
		bin:     bin,
		policy:  "../../../policy/testdata/chain-default.yaml",
		settle:  500 * time.Millisecond,
		startTO: 15 * time.Second,
	}
	var out bytes.Buffer
	if err := measure(&out, mc, dir, 1000); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out.String())
	if len(f) != 6 || f[0] != "BenchmarkAgentRSS/denylist=1000" || f[1] != "1" || f[3] != "rss-bytes" || f[5] != "heap-bytes" {
		t.Fatalf("output %q is not in benchmark format", out.String())
	}
	rss, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil || rss < 1<<20 || rss > 1<<32 {
		t.Errorf("RSS %q bytes is not plausible", f[2])
	}
	heap, err := strconv.ParseUint(f[4], 10, 64)
	if err != nil || heap == 0 || heap > rss {
		t.Errorf("heap %q bytes is not plausible next to RSS %d", f[4], rss)
	}
	s, err := state.Open(filepath.Join(dir, "state.db"), options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Denylisted(strings.Repeat("0", 32)) || s.DenylistSeq() != 1 {
		t.Error("the prepared denylist is not in the state file")
	}
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{{"-entries", "x"}, {"-entries", "-1"}, {"extra"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}
