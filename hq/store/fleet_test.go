package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/wire"
)

// fleetStatus is a register's status on policy version v (0: none).
func fleetStatus(store, reg string, online bool, v int64) wire.Status {
	st := wire.Status{Store: store, Register: reg, Online: online, Version: "test",
		Links: wire.Links{Scanner: wire.LinkUp, POS: wire.LinkUp}, At: t0}
	if v > 0 {
		st.Policy = &wire.PolicyInfo{Name: "p", Version: v}
	}
	return st
}

// saveFleet stores a fleet where version 3 is being rolled out: applied,
// offline, refused (bad signature, and already newer) and pending.
func saveFleet(t *testing.T, s Store) {
	t.Helper()
	r1 := fleetStatus("s1", "r1", true, 3)
	r1.OutboxDepth = 3
	r2 := fleetStatus("s1", "r2", false, 2)
	r2.Links.Scanner = wire.LinkDown
	refused := fleetStatus("s2", "r1", true, 2)
	refused.Refusal = &wire.Refusal{Subject: wire.SubjectPolicy, Reason: "bad_signature", Detail: "key hq1: verification error", Version: 3, At: t0}
	newer := fleetStatus("s2", "r2", true, 4)
	deniedList := fleetStatus("s3", "r1", true, 2)
	deniedList.Refusal = &wire.Refusal{Subject: wire.SubjectDenylist, Reason: "bad_signature", Version: 3, At: t0}
	for i, st := range []wire.Status{r1, r2, refused, newer, deniedList, fleetStatus("s3", "r2", true, 0)} {
		if err := s.SaveStatus(context.Background(), st, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFleetStores(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		saveFleet(t, s)
		page, err := s.FleetStores(ctx, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		want := []StoreSummary{
			{Store: "s1", Registers: 2, Online: 1, Offline: 1, LastSeen: t0.Add(time.Minute), MaxOutbox: 3, ScannersDown: 1,
				Policies: []PolicyCount{{"p", 2, 1}, {"p", 3, 1}}},
			{Store: "s2", Registers: 2, Online: 2, LastSeen: t0.Add(3 * time.Minute), Policies: []PolicyCount{{"p", 2, 1}, {"p", 4, 1}}},
		}
		if !reflect.DeepEqual(utc(page), want) {
			t.Errorf("first page\n got %+v\nwant %+v", page, want)
		}
		page, err = s.FleetStores(ctx, "s2", 2)
		if err != nil {
			t.Fatal(err)
		}
		want = []StoreSummary{{Store: "s3", Registers: 2, Online: 2, LastSeen: t0.Add(5 * time.Minute), Policies: []PolicyCount{{"p", 2, 1}}}}
		if !reflect.DeepEqual(utc(page), want) {
			t.Errorf("after s2\n got %+v\nwant %+v", page, want)
		}
		if page, err = s.FleetStores(ctx, "s3", 2); err != nil || len(page) != 0 {
			t.Errorf("after s3: %+v, %v; want an empty page", page, err)
		}
	})
}

func utc(ss []StoreSummary) []StoreSummary {
	for i := range ss {
		ss[i].LastSeen = ss[i].LastSeen.UTC()
	}
	return ss
}

func TestFleetOf(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		saveFleet(t, s)
		for _, c := range []struct {
			store, after string
			limit        int
			want         string
		}{
			{"s1", "", 10, "[s1/r1 s1/r2]"},
			{"s1", "", 1, "[s1/r1]"},
			{"s1", "r1", 10, "[s1/r2]"},
			{"s1", "r2", 10, "[]"},
			{"s", "", 10, "[]"}, // a prefix of a store id is another store
			{"s4", "", 10, "[]"},
		} {
			regs, err := s.FleetOf(ctx, c.store, c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range regs {
				got = append(got, r.Store+"/"+r.Register)
			}
			if fmt.Sprint(got) != c.want && !(c.want == "[]" && len(got) == 0) {
				t.Errorf("FleetOf(%q, after %q, %d) = %v, want %s", c.store, c.after, c.limit, got, c.want)
			}
		}
		regs, _ := s.FleetOf(ctx, "s1", "", 1)
		if len(regs) != 1 || regs[0].Status.OutboxDepth != 3 || regs[0].Status.Policy.Version != 3 {
			t.Errorf("s1/r1 read back as %+v", regs)
		}
	})
}

func TestRollout(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		saveFleet(t, s)
		ro, err := s.Rollout(ctx, wire.ScopeAll, 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ro.Refusals {
			ro.Refusals[i].LastSeen = time.Time{}
		}
		for i := range ro.Waiting {
			ro.Waiting[i].LastSeen = time.Time{}
		}
		want := Rollout{Scope: wire.ScopeAll, Version: 3, Registers: 6, Applied: 1, Refused: 2, Pending: 2, Offline: 1,
			Refusals: []RolloutRegister{
				{Store: "s2", Register: "r1", State: wire.RolloutRefused, Reason: "bad_signature", Detail: "key hq1: verification error", PolicyVersion: 2, Online: true},
				{Store: "s2", Register: "r2", State: wire.RolloutRefused, Reason: "already on newer v4", PolicyVersion: 4, Online: true},
			},
			Waiting: []RolloutRegister{ // at most 2 of the 3
				{Store: "s1", Register: "r2", State: wire.RolloutOffline, PolicyVersion: 2},
				{Store: "s3", Register: "r1", State: wire.RolloutPending, PolicyVersion: 2, Online: true},
			},
		}
		if !reflect.DeepEqual(ro, want) {
			t.Errorf("rollout of v3\n got %+v\nwant %+v", ro, want)
		}
		// One store; then a register takes the version.
		if err := s.SaveStatus(ctx, fleetStatus("s3", "r2", true, 3), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		ro, err = s.Rollout(ctx, "s3", 3, 10)
		if err != nil {
			t.Fatal(err)
		}
		if ro.Registers != 2 || ro.Applied != 1 || ro.Pending != 1 || ro.Refused != 0 || len(ro.Waiting) != 1 || ro.Waiting[0].Register != "r1" {
			t.Errorf("rollout of v3 in s3 after r2 took it: %+v", ro)
		}
		if ro, err = s.Rollout(ctx, "s9", 3, 10); err != nil || ro.Registers != 0 || ro.Refusals == nil || ro.Waiting == nil {
			t.Errorf("rollout in a store with no registers: %+v, %v", ro, err)
		}
	})
}

// A bbolt file from before the fleet index gets it built when opened.
func TestBoltBuildsFleetIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	saveFleet(t, s)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bFleetIdx) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ro, err := s.Rollout(context.Background(), wire.ScopeAll, 3, 10)
	if err != nil || ro.Registers != 6 || ro.Applied != 1 || ro.Refused != 2 || ro.Offline != 1 || ro.Pending != 2 {
		t.Errorf("rollout after the index was rebuilt: %+v, %v", ro, err)
	}
	page, err := s.FleetStores(context.Background(), "", 10)
	if err != nil || len(page) != 3 || page[0].MaxOutbox != 3 || page[0].ScannersDown != 1 {
		t.Errorf("stores after the index was rebuilt: %+v, %v", page, err)
	}
}
