package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

// BenchmarkBoltSaveEvents stores batches of 500 new decisions, a tenth of
// them denies with fired rules: ingest's cost per event, the rollup and
// the feed included.
func BenchmarkBoltSaveEvents(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "hq.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		batch := make([]event.Event, 500)
		for i := range batch {
			seq++
			out, rules := policy.Allow, []string(nil)
			if seq%10 == 0 {
				out, rules = policy.Deny, []string{"carton-cap", "velocity~"}
			}
			batch[i] = fired(fmt.Sprintf("s%d", seq%50), seq, t0.Add(time.Duration(seq)*time.Second), out, 12000, rules...)
		}
		if _, err := s.SaveEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
