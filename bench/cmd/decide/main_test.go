package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRun builds posguard and drives the real agent briefly: every answer
// must be a stored allow (drive fails otherwise) and the line must be in
// benchmark format with plausible figures.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-callers", "2", "-rounds", "1", "-duration", "500ms",
		"-policy", "../../../policy/testdata/chain-default.yaml",
		"-issuer-key", "../../../policy/testdata/test-issuer-ed25519.key.pem"}, &out); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out.String())
	if len(f) != 10 || f[0] != "BenchmarkDecideAgent/callers=2/bin=head" || f[3] != "ns/op" || f[5] != "decisions/s" || f[7] != "p50-ms" || f[9] != "p99-ms" {
		t.Fatalf("output %q is not in benchmark format", out.String())
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 {
		t.Fatalf("%q decisions", f[1])
	}
	p50, _ := strconv.ParseFloat(f[6], 64)
	p99, _ := strconv.ParseFloat(f[8], 64)
	if p50 <= 0 || p99 < p50 || p99 > float64(30*time.Second/time.Millisecond) {
		t.Errorf("p50 %v ms, p99 %v ms: not plausible", p50, p99)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-callers", "0"}, {"-bin", "nopath"}, {"extra"}} {
		if err := run(args, new(bytes.Buffer)); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}
