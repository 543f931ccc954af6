package state

import (
	"cmp"
	"hash/maphash"
	"math/bits"
	"slices"
)

// denySet is the decision path's index of the denylist: 8 bytes per
// account instead of the account itself. It holds a 64-bit keyed hash
// (hash/maphash, a random seed per Store) of every account in the
// denylist bucket, sorted, plus a small overlay of the changes since the
// array was built. A hash present means "probably listed": Store.Denylisted
// confirms it in the bbolt file, so a hash collision can never deny an
// innocent account; a hash absent means "not listed" for certain, as every
// listed account's hash is in the set.
//
// A denySet is immutable once published: updates build a new one (sharing
// the sorted array) that replaces it by an atomic pointer swap after the
// bbolt commit, so lookups take no lock.
type denySet struct {
	seed maphash.Seed
	// hashOf, when set, replaces maphash (tests force collisions with it).
	hashOf func(string) uint64
	// base is sorted; a hash appears once per account that has it.
	base []uint64
	// dir[b] is the index in base of the first hash whose top dirBits bits
	// are >= b (len 1<<dirBits + 1): a lookup reads one directory entry
	// and scans ~16 hashes, two cache misses at most.
	dir   []uint32
	shift uint // 64 - dirBits
	// over is the net change per hash since base was built, sorted by hash,
	// without zeros: +1 for an account added, -1 for one removed.
	over []hashCount
	n    int // accounts in the set
}

type hashCount struct {
	h uint64
	n int32
}

// newDenySet builds the set of the given hashes, sorting hashes in place
// (the set keeps the slice).
func newDenySet(seed maphash.Seed, hashOf func(string) uint64, hashes []uint64) *denySet {
	d := &denySet{seed: seed, hashOf: hashOf}
	d.setBase(hashes)
	return d
}

func (d *denySet) hash(account string) uint64 {
	if d.hashOf != nil {
		return d.hashOf(account)
	}
	return maphash.String(d.seed, account)
}

func (d *denySet) hashBytes(b []byte) uint64 {
	if d.hashOf != nil {
		return d.hashOf(string(b))
	}
	return maphash.Bytes(d.seed, b)
}

// has reports whether account's hash is in the set: false means the
// account is not listed; true, that it is unless its hash collides with a
// listed account's (about len/2^64: see Store.Denylisted).
func (d *denySet) has(account string) bool {
	h := d.hash(account)
	c := d.baseCount(h)
	if len(d.over) > 0 {
		if i, ok := slices.BinarySearchFunc(d.over, h, cmpHash); ok {
			c += int(d.over[i].n)
		}
	}
	return c > 0
}

func cmpHash(e hashCount, h uint64) int { return cmp.Compare(e.h, h) }

// baseCount is the number of times h is in base (0, or 1 but for a
// collision of two listed accounts).
func (d *denySet) baseCount(h uint64) int {
	if len(d.base) == 0 {
		return 0
	}
	b := h >> d.shift
	lo, hi := int(d.dir[b]), int(d.dir[b+1])
	c := 0
	for i := lo; i < hi; i++ {
		switch v := d.base[i]; {
		case v == h:
			c++
		case v > h:
			return c
		}
	}
	return c
}

// Len is the number of accounts in the set.
func (d *denySet) Len() int { return d.n }

// apply returns the set with the accounts of added hashes added and those
// of removed hashes removed: each hash stands for one account that was
// absent (added) or present (removed) in the file, so the counts stay
// exact when two accounts share a hash. The overlay is merged into a new
// base once it outgrows a few thousand entries, keeping the lookups' scan
// of it short and the cost of a merge (a copy of the array) rare.
func (d *denySet) apply(added, removed []uint64) *denySet {
	if len(added) == 0 && len(removed) == 0 {
		return d
	}
	changes := make([]hashCount, 0, len(added)+len(removed))
	for _, h := range added {
		changes = append(changes, hashCount{h, 1})
	}
	for _, h := range removed {
		changes = append(changes, hashCount{h, -1})
	}
	slices.SortFunc(changes, func(a, b hashCount) int { return cmp.Compare(a.h, b.h) })
	over := mergeCounts(d.over, changes)
	nd := &denySet{seed: d.seed, hashOf: d.hashOf, base: d.base, dir: d.dir, shift: d.shift, over: over,
		n: d.n + len(added) - len(removed)}
	if len(over) > overlayLimit(len(d.base)) {
		nd.compact()
	}
	return nd
}

// overlayLimit is the overlay size that triggers a merge into the base:
// 4·√n, at least 1,024 (4,000 entries at 1,000,000 accounts, whose merge
// copies 8 MB once per ~4,000 changes).
func overlayLimit(n int) int {
	l := 4 << (bits.Len(uint(n)) / 2)
	return max(l, 1024)
}

// mergeCounts merges two hash-sorted lists, summing the counts of equal
// hashes and dropping zeros. b may hold a hash more than once.
func mergeCounts(a, b []hashCount) []hashCount {
	out := make([]hashCount, 0, len(a)+len(b))
	push := func(e hashCount) {
		if k := len(out) - 1; k >= 0 && out[k].h == e.h {
			out[k].n += e.n
			if out[k].n == 0 {
				out = out[:k]
			}
			return
		}
		if e.n != 0 {
			out = append(out, e)
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j == len(b) || i < len(a) && a[i].h <= b[j].h {
			push(a[i])
			i++
		} else {
			push(b[j])
			j++
		}
	}
	return out
}

// compact merges the overlay into a new base.
func (d *denySet) compact() {
	base := make([]uint64, 0, d.n)
	o := 0
	for i := 0; i < len(d.base); {
		h := d.base[i]
		for ; o < len(d.over) && d.over[o].h < h; o++ {
			base = appendN(base, d.over[o].h, int(d.over[o].n))
		}
		c := 0
		for ; i < len(d.base) && d.base[i] == h; i++ {
			c++
		}
		if o < len(d.over) && d.over[o].h == h {
			c += int(d.over[o].n)
			o++
		}
		base = appendN(base, h, c)
	}
	for ; o < len(d.over); o++ {
		base = appendN(base, d.over[o].h, int(d.over[o].n))
	}
	d.over = nil
	d.setBase(base)
}

func appendN(s []uint64, h uint64, n int) []uint64 {
	for ; n > 0; n-- {
		s = append(s, h)
	}
	return s
}

// dirBits is the directory size for n hashes: about one entry per 16.
func dirBits(n int) uint {
	return uint(max(bits.Len(uint(n))-4, 1))
}

// setBase makes hashes (sorted or not) the base and builds its directory.
func (d *denySet) setBase(hashes []uint64) {
	sortHashes(hashes, 56)
	k := dirBits(len(hashes))
	d.shift = 64 - k
	buckets := 1 << k
	dir := make([]uint32, buckets+1)
	for _, h := range hashes {
		dir[(h>>d.shift)+1]++
	}
	for b := 1; b <= buckets; b++ {
		dir[b] += dir[b-1]
	}
	d.base, d.dir, d.n = hashes, dir, len(hashes)
}

// sortHashes sorts a by the byte at shift, then each part by the next
// byte, in place (American flag sort), finishing small parts by insertion.
// Keyed hashes are spread evenly, so a million of them take two passes
// over the array plus 65,536 insertion sorts of ~15: several times faster
// than a comparison sort, and no second array. One byte per pass keeps the
// writes on 256 cache lines at a time.
func sortHashes(a []uint64, shift uint) {
	if len(a) <= 32 {
		insertionSort(a)
		return
	}
	var count, next [257]int
	for _, h := range a {
		count[(h>>shift)&0xff+1]++
	}
	for b := 1; b <= 256; b++ {
		count[b] += count[b-1]
	}
	copy(next[:], count[:])
	for b := range 256 {
		end := count[b+1]
		for next[b] < end {
			h := a[next[b]]
			t := int(h>>shift) & 0xff
			for t != b {
				a[next[t]], h = h, a[next[t]]
				next[t]++
				t = int(h>>shift) & 0xff
			}
			a[next[b]] = h
			next[b]++
		}
	}
	if shift == 0 {
		return
	}
	for b := range 256 {
		if part := a[count[b]:count[b+1]]; len(part) > 1 {
			sortHashes(part, shift-8)
		}
	}
}

func insertionSort(s []uint64) {
	for i := 1; i < len(s); i++ {
		v := s[i]
		j := i
		for ; j > 0 && s[j-1] > v; j-- {
			s[j] = s[j-1]
		}
		s[j] = v
	}
}
