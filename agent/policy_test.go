package agent_test

import (
	"math"
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
)

// A bundle stored before registers bounded versions and issue times (one
// with version 2^63-1, or issued in 2030) is not put back in force at
// start: the register falls back to its bootstrap file, so the next signed
// policy HQ pushes is newer than it.
func TestStoredPolicyOutOfBoundsNotUsed(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*policy.Policy)
	}{
		{"version 2^63-1", func(p *policy.Policy) { p.Metadata.Version = math.MaxInt64 }},
		{"issued in 2030", func(p *policy.Policy) {
			p.Metadata.Version = 9
			p.Metadata.IssuedAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config("")
			p, err := policy.LoadFile(f.path("policy.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			tc.mod(p)
			canon, err := p.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			// Signed raw: SignPolicy refuses a version above issuedAt.
			b, err := bundle.Sign(f.hqKey, "EdDSA", "hq1", bundle.TypePolicy, canon)
			if err != nil {
				t.Fatal(err)
			}
			st, err := state.Open(cfg.State, state.Options{Store: "S001", Register: "R1"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SavePolicy(b, p.Metadata.Version); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			r := start(t, cfg, agent.Options{})
			var s agent.Status
			if r.do(t, "GET", "/v1/status", nil, &s); s.Policy == nil || s.Policy.Source != agent.SourceBootstrap || s.Policy.Version != 1 {
				t.Fatalf("policy in force after start: %+v", s.Policy)
			}
		})
	}
}
