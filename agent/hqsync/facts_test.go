package hqsync

import (
	"testing"
	"time"

	"github.com/posguard/posguard/wire"
)

// Peers' facts arriving on the store filter are applied; garbage and
// facts that claim another register than their topic are refused, and
// neither stops the link.
func TestPeerFactsApplied(t *testing.T) {
	r := newRig(t)
	waitFor(t, "the facts subscription", func() bool { return r.sync.Peers().Reachable })
	fact := func(reg, id, key string) []byte {
		f := wire.Facts{ID: "s1/" + reg + "/e/" + id, Store: "s1", Register: reg, At: now, Outcome: "allow",
			Spent: &wire.Spent{Key: key, Until: now.Add(time.Hour)}}
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, m := range []struct {
		topic   string
		payload []byte
	}{
		{wire.FactsTopic("s1", "r2"), []byte(`{"id":`)},
		{wire.FactsTopic("s1", "r2"), fact("r3", "1", "pg1:forged")}, // r3's fact on r2's topic
		{wire.FactsTopic("s1", "r2"), fact("r2", "2", "pg1:shot")},
	} {
		// Inline: past the ACL, as a broken or hostile peer behind a
		// misconfigured broker could.
		if err := r.b.Server().Publish(m.topic, m.payload, false, 1); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "r2's fact applied", func() bool { return r.st.Seen("pg1:shot") })
	if r.st.Seen("pg1:forged") {
		t.Error("a fact claiming another register than its topic was applied")
	}
	if p := r.sync.Peers(); !p.LastFactAt.Equal(now) || p.Pending != 0 {
		t.Errorf("peers status %+v", p)
	}
	if st := r.sync.statusNow(); st.Peers == nil || !st.Peers.Reachable {
		t.Errorf("retained status without the peers link: %+v", st.Peers)
	}
}
