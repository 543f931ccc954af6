package state

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/posguard/posguard/wire"
)

// TestDenySetCounts checks the index against a plain multiset of hashes
// through random adds, removes and compactions, with hashes drawn from a
// small range so that many collide.
func TestDenySetCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	want := map[uint64]int{}
	var hashes []uint64
	for range 5000 {
		h := rng.Uint64N(3000) << 50 // spread over the directory, colliding often
		hashes = append(hashes, h)
		want[h]++
	}
	d := newDenySet(maphash.MakeSeed(), nil, slices.Clone(hashes))
	check := func(step string) {
		t.Helper()
		n := 0
		for h, c := range want {
			n += c
			if got := d.baseCount(h) + overCount(d, h); got != c {
				t.Fatalf("%s: count of %x = %d, want %d", step, h, got, c)
			}
		}
		for range 200 {
			h := rng.Uint64()
			if want[h] == 0 && d.baseCount(h)+overCount(d, h) != 0 {
				t.Fatalf("%s: absent hash %x counted", step, h)
			}
		}
		if d.Len() != n {
			t.Fatalf("%s: Len %d, want %d", step, d.Len(), n)
		}
		if !slices.IsSorted(d.base) {
			t.Fatalf("%s: base not sorted", step)
		}
	}
	check("built")
	compactions := 0
	for round := range 40 {
		var add, remove []uint64
		for range rng.IntN(400) {
			h := rng.Uint64N(3000) << 50
			add = append(add, h)
			want[h]++
		}
		for h, c := range want {
			if c > 0 && rng.IntN(8) == 0 {
				remove = append(remove, h)
				want[h]--
			}
		}
		before := d.base
		d = d.apply(add, remove)
		if len(d.base) > 0 && len(before) > 0 && &d.base[0] != &before[0] {
			compactions++
		}
		check(fmt.Sprint("round ", round))
	}
	if compactions == 0 {
		t.Error("the overlay was never merged into the base")
	}
}

func overCount(d *denySet, h uint64) int {
	if i, ok := slices.BinarySearchFunc(d.over, h, cmpHash); ok {
		return int(d.over[i].n)
	}
	return 0
}

func TestSortHashes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 31, 33, 1000, 100_000} {
		a := make([]uint64, n)
		for i := range a {
			a[i] = rng.Uint64()
			if i%10 == 0 && i > 0 {
				a[i] = a[i-1] // duplicates
			}
		}
		want := slices.Clone(a)
		slices.Sort(want)
		sortHashes(a, 56)
		if !slices.Equal(a, want) {
			t.Errorf("%d hashes: not sorted", n)
		}
	}
}

// TestDenylistCollisions runs the list through a hash that maps many
// accounts to one value: whatever collides, a listed account is found, an
// unlisted one is not, and removing one of two colliding accounts keeps the
// other — in memory and after a reopen.
func TestDenylistCollisions(t *testing.T) {
	opts := testOptions()
	// Accounts collide on their first letter.
	opts.denyHash = func(a string) uint64 { return uint64(a[0]) << 56 }
	path := t.TempDir() + "/state.db"
	s := openT(t, path, opts)
	v := func(seq uint64) wire.ListVersion { return wire.ListVersion{Epoch: "E", Seq: seq} }
	steps := []struct {
		name     string
		apply    func() error
		listed   []string
		unlisted []string
	}{
		{"snapshot", func() error { _, err := s.ReplaceDenylist(v(1), t0, []string{"a1", "a2", "b1"}); return err },
			[]string{"a1", "a2", "b1"}, []string{"a3", "b2", "c1"}},
		{"remove one of two colliding", func() error { return s.ApplyDenylistDelta(v(2), t0, nil, []string{"a1"}) },
			[]string{"a2", "b1"}, []string{"a1", "a3"}},
		{"remove an unlisted colliding account", func() error { return s.ApplyDenylistDelta(v(3), t0, nil, []string{"a9", "b9"}) },
			[]string{"a2", "b1"}, []string{"a1", "a9", "b9"}},
		{"add twice, and a listed one again", func() error {
			return s.ApplyDenylistDelta(v(4), t0, []string{"c1", "c1", "a2", "a3"}, nil)
		}, []string{"a2", "a3", "b1", "c1"}, []string{"a1", "c2"}},
		{"add and remove in one delta", func() error { return s.ApplyDenylistDelta(v(5), t0, []string{"d1"}, []string{"d1", "a2"}) },
			[]string{"a3", "b1", "c1"}, []string{"a1", "a2", "d1"}},
		{"remove the last of its hash", func() error { return s.ApplyDenylistDelta(v(6), t0, nil, []string{"b1"}) },
			[]string{"a3", "c1"}, []string{"b1", "b2"}},
	}
	check := func(s *Store, step string, listed, unlisted []string) {
		t.Helper()
		for _, a := range listed {
			if !s.Denylisted(a) {
				t.Errorf("%s: %q not listed", step, a)
			}
		}
		for _, a := range unlisted {
			if s.Denylisted(a) {
				t.Errorf("%s: %q listed", step, a)
			}
		}
	}
	for _, st := range steps {
		if err := st.apply(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		check(s, st.name, st.listed, st.unlisted)
		if n := s.deny.Load().Len(); n != len(st.listed) {
			t.Errorf("%s: index holds %d accounts, want %d", st.name, n, len(st.listed))
		}
	}
	s.Close()
	last := steps[len(steps)-1]
	check(openT(t, path, opts), "reopened", last.listed, last.unlisted)
}

// TestDenylistFailedWriteKeepsList makes the file refuse to grow: a
// snapshot and a delta that fail leave the list as it was, in memory and
// in the file.
func TestDenylistFailedWriteKeepsList(t *testing.T) {
	path := t.TempDir() + "/state.db"
	opts := testOptions()
	opts.MaxSize = 256 << 10
	s := openT(t, path, opts)
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, t0, []string{"kept"}); err != nil {
		t.Fatal(err)
	}
	big := denyAccounts(20_000)
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 2}, t0, big); !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatalf("snapshot past the size cap: %v", err)
	}
	if err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: 2}, t0, big, []string{"kept"}); !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatalf("delta past the size cap: %v", err)
	}
	for _, s := range []*Store{s, func() *Store { s.Close(); return openT(t, path, testOptions()) }()} {
		if !s.Denylisted("kept") || s.Denylisted(big[0]) || s.Denylisted(big[19_999]) {
			t.Error("a failed write changed the list")
		}
		if v := s.DenylistVersion(); v.Seq != 1 {
			t.Errorf("version %+v after failed writes", v)
		}
	}
}

// TestDenylistLookupsDuringUpdates looks accounts up while deltas and
// snapshots replace the index: an account in every version is always
// found, one in none never is (go test -race checks the sharing).
func TestDenylistLookupsDuringUpdates(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, t0, []string{"always"}); err != nil {
		t.Fatal(err)
	}
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		bad  atomic.Int64
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if !s.Denylisted("always") || s.Denylisted("never") {
					bad.Add(1)
				}
			}
		}()
	}
	seq := uint64(1)
	for i := range 60 {
		seq++
		v := wire.ListVersion{Epoch: "E", Seq: seq}
		at := t0.Add(time.Duration(seq) * time.Second)
		var err error
		if i%10 == 9 {
			_, err = s.ReplaceDenylist(v, at, append(denyAccounts(2000), "always"))
		} else {
			err = s.ApplyDenylistDelta(v, at, []string{fmt.Sprint("x", i)}, []string{fmt.Sprint("x", i-1)})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d lookups saw neither the old nor the new list", n)
	}
}

// TestDenylistedDoesNotAllocate: a lookup of an account not on the list —
// every sale but a listed account's — allocates nothing.
func TestDenylistedDoesNotAllocate(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, t0, denyAccounts(10_000)); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: 2}, t0, []string{"late"}, nil); err != nil {
		t.Fatal(err)
	}
	acct := strings.Repeat("f", 32)
	if n := testing.AllocsPerRun(1000, func() { s.Denylisted(acct) }); n != 0 {
		t.Errorf("Denylisted of an unlisted account: %v allocations", n)
	}
}
