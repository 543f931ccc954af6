package agent_test

import (
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/token"
)

// Seen tokens and history older than the retention are pruned (at start
// and then every retention.pruneEvery), so the state file does not grow
// without bound; the outbox keeps its events for HQ.
func TestPruneOnSchedule(t *testing.T) {
	f := newFixture(t)
	cfg := f.config("")
	tok := f.mint("prune-me", nil)
	decoded, err := token.Decode([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	replayKey := "pg1:" + decoded.TokenID

	r := start(t, cfg, agent.Options{})
	if res, _ := r.decide(t, tok, line(pack, 1)); res.Outcome != policy.Allow {
		t.Fatalf("first sale %+v", res)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	inspect := func() (seen bool, sales int, depth int) {
		t.Helper()
		st, err := state.Open(cfg.State, state.Options{Store: "S001", Register: "R1"})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		depth, _ = st.OutboxStats()
		return st.Seen(replayKey), st.AccountSales("prune-me", "S001", "", time.Time{}, nil).Sales, depth
	}
	if seen, sales, depth := inspect(); !seen || sales != 1 || depth != 1 {
		t.Fatalf("after the sale: seen %v, sales %d, outbox %d", seen, sales, depth)
	}

	// Eight days later (retention.keep is 7 days by default).
	later := func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	r2 := start(t, cfg, agent.Options{Now: later})
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	if seen, sales, depth := inspect(); seen || sales != 0 || depth != 1 {
		t.Fatalf("after pruning: seen %v, sales %d, outbox %d (want false, 0, 1)", seen, sales, depth)
	}
}
