package main

import (
	"strings"
	"testing"
	"time"
)

func TestHQCheckChainRules(t *testing.T) {
	code, out, _ := runAt(t, time.Time{}, "hq", "--check-chain-rules", "../../hq/chain/testdata/rules.yaml")
	if code != 0 || !strings.Contains(out, `ok: chain rules "chain-2019", 5 rule(s), 3 enforced, 2 in shadow`) {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	code, out, _ = runAt(t, time.Time{}, "hq", "--check-chain-rules", "../../hq/chain/testdata/bad.yaml")
	if code != 1 || strings.Count(out, "\n") != 20 || !strings.Contains(out, "bad.yaml: rules[0].minStores: must be 2 to 64, not 1\n") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	// HQ does not start on a wrong file, and says everything wrong.
	code, _, errs := runAt(t, time.Time{}, "hq", "--chain-rules", "../../hq/chain/testdata/bad.yaml", "--broker", "tcp://127.0.0.1:1")
	if code == 0 || !strings.Contains(errs, "20 problem(s)") || !strings.Contains(errs, "rules[4].expr: is required for expr") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	_, help, _ := runAt(t, time.Time{}, "hq", "-h")
	for _, flag := range []string{"-chain-rules", "-check-chain-rules"} {
		if !strings.Contains(help, flag) {
			t.Errorf("help does not describe %s", flag)
		}
	}
}
