package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
)

// TestFanout pushes two policy versions to 20 real MQTT clients through
// the embedded broker; every client must verify both (the second is newer
// than what each applied), and one benchmark line is printed per push.
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
		if len(f) != 8 || f[0] != "BenchmarkPolicyPush/clients=20" || f[3] != "ns/op" || f[5] != "received-ns" {
			t.Errorf("result line %q is not in benchmark format", l)
		}
	}
	if strings.Contains(logs.String(), "refused") {
		t.Errorf("a client refused a push:\n%s", logs.String())
	}
}
