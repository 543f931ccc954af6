package main

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/posguard/posguard/agent/state"
)

// TestMeasure builds a state file with a denylist and measures it: the
// entries must be there after reopening, and the figures must be sane.
func TestMeasure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := prepare(path, 5000); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := measureOne(&out, path, "../../../policy/testdata/chain-default.yaml", "denylist=5000"); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out.String())
	if len(f) != 6 || f[0] != "BenchmarkAgentRSS/denylist=5000" || f[3] != "rss-bytes" || f[5] != "heap-bytes" {
		t.Fatalf("output %q is not in benchmark format", out.String())
	}
	rss, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil || rss < 1<<20 || rss > 1<<32 {
		t.Errorf("RSS %q bytes is not plausible", f[2])
	}
	s, err := state.Open(path, options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Denylisted(strings.Repeat("0", 32)) || s.DenylistSeq() != 1 {
		t.Error("the prepared denylist is not in the state file")
	}
}
