package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
)

// TestFanout pushes two policy versions (after the warm-up) through the
// embedded broker to 20 registers, each an hqsync client with its own state
// file; run fails unless all 20 applied each push and ended on the last
// version, stored, and one benchmark line is printed per push.
func TestFanout(t *testing.T) {
	p, err := policy.LoadFile("../../../policy/testdata/chain-default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, logs bytes.Buffer
	if err := run(ctx, p, 20, 2, &out, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 result lines, got:\n%s", out.String())
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 8 || f[0] != "BenchmarkPolicyPush/clients=20" || f[3] != "ns/op" || f[5] != "delivered-ns" || f[7] != "bundle-bytes" {
			t.Errorf("result line %q is not in benchmark format", l)
		}
	}
	if !strings.Contains(logs.String(), "20 registers connected") {
		t.Errorf("no connect note in the log:\n%s", logs.String())
	}
}
