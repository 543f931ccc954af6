// Package state is the register's durable memory: one bbolt file holding the
// seen payment tokens, EMV counters, sales history, the outbox of events for
// HQ, held reviews, the active policy bundle, the HQ denylist and the
// answers to callers' idempotency keys.
//
// The file is the source of truth. What the decision hot path reads (history,
// seen tokens, ATCs, denylist) is mirrored in memory at Open and updated only
// after a transaction has committed, so a failed write never leaves the
// memory ahead of the disk.
package state

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// SchemaVersion is the layout this build reads and writes. A file with an
// older version is migrated by the entries of migrations; without one, Open
// refuses it rather than guess.
const SchemaVersion uint64 = 3

// migrations[v] upgrades a file from schema v to v+1 inside the open
// transaction. Schema 1 is the first released layout; files of schema 0
// (development builds) are refused with ErrSchema.
var migrations = map[uint64]func(*bolt.Tx) error{
	// 2 adds the idempotency keys of POST /v1/decide.
	1: func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(bIdem))
		return err
	},
	// 3 adds the store facts: the outbox of this register's facts and the
	// peers' facts and sales.
	2: func(tx *bolt.Tx) error {
		for _, name := range []string{bFactsOut, bPeerFacts, bPeerHistory} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	},
}

const (
	bMeta      = "meta"
	bSeen      = "seen"
	bATC       = "atc"
	bHistory   = "history"
	bOutbox    = "outbox"
	bDroppable = "outbox-droppable" // seqs of outbox events that may be dropped when full (all but alerts)
	bReviews   = "reviews"
	bPolicy    = "policy"
	bDeny      = "denylist"
	bIdem      = "idempotency" // caller's retry key -> stored answer
	// Store facts (facts.go).
	bFactsOut    = "facts-outbox" // own facts not yet taken by the broker: outbox seq -> wire.Facts JSON
	bPeerFacts   = "peer-facts"   // ids of peers' facts applied -> their time, unix ns
	bPeerHistory = "peer-history" // peers' sales, keyed and valued as history

	kSchema    = "schema"
	kEpoch     = "epoch"
	kStore     = "store"
	kRegister  = "register"
	kDepth     = "outbox-depth"
	kDropped   = "outbox-dropped"
	kPolicyMax = "policy-max-version"
	kDenySeq   = "denylist-seq"
	kDenyEpoch = "denylist-epoch"  // epoch of the HQ store the list came from
	kDenyAt    = "denylist-issued" // issuedAt of the last applied message, unix ns
	kBundle    = "bundle"
	kVersion   = "version"
)

var allBuckets = []string{bMeta, bSeen, bATC, bHistory, bOutbox, bDroppable, bReviews, bPolicy, bDeny, bIdem, bFactsOut, bPeerFacts, bPeerHistory}

var (
	// ErrInUse: another process (a second agent) holds the file's lock.
	ErrInUse = errors.New("state file in use by another process")
	// ErrCorrupt: the file is damaged. It is never replaced by an empty
	// store automatically: the outbox may hold events HQ has not seen.
	ErrCorrupt = errors.New("state file corrupt")
	// ErrSchema: the file was written by a build with another layout.
	ErrSchema = errors.New("state file schema not supported")
	// ErrNotState: a valid bbolt file that is not a posguard state file.
	ErrNotState = errors.New("not a posguard state file")
	// ErrWrongRegister: the file belongs to another store or register.
	ErrWrongRegister = errors.New("state file belongs to another register")
	// ErrReplayed: the token was already used (a concurrent Commit won).
	ErrReplayed = errors.New("payment token already used")
	// ErrNoPolicy: no policy bundle has been saved yet.
	ErrNoPolicy = errors.New("no policy stored")
	// ErrNoReview: no review with that id.
	ErrNoReview = errors.New("no such review")
	// ErrAlreadyResolved: the review was resolved differently before.
	ErrAlreadyResolved = errors.New("review already resolved")
)

// Options configure a Store. Store and Register are required.
type Options struct {
	Store    string
	Register string
	// Retention is how long history, EMV counters and resolved reviews are
	// kept (default 7 days); it must cover the longest policy window.
	Retention time.Duration
	// OutboxCap is the number of outbox events kept before the oldest
	// non-alert events are dropped (default 100,000).
	OutboxCap int
	// LockTimeout is how long Open waits for another process to release
	// the file (default 1s).
	LockTimeout time.Duration
	// MaxSize caps the file size in bytes (0: no cap); writes beyond it fail
	// like a full disk.
	MaxSize int
	// ShareFacts makes Commit keep each decision's facts for the store's
	// other registers (PendingFacts, FactsTaken). Off when the register has
	// no broker link, where nothing would ever take them.
	ShareFacts bool
	// OpenFile replaces os.OpenFile for the data file (bbolt option).
	OpenFile func(name string, flag int, perm os.FileMode) (*os.File, error)
	Logger   *slog.Logger

	// denyHash replaces the denylist index's keyed hash (tests force
	// collisions with it).
	denyHash func(string) uint64
}

func (o Options) withDefaults() (Options, error) {
	for name, v := range map[string]string{"store": o.Store, "register": o.Register} {
		if v == "" || strings.Contains(v, "/") {
			return o, fmt.Errorf("state options: %s %q must be non-empty and contain no '/'", name, v)
		}
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.OutboxCap <= 0 {
		o.OutboxCap = 100_000
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Store is the open state file. All methods are safe for concurrent use.
type Store struct {
	db     *bolt.DB
	path   string
	opts   Options
	prefix string // event id prefix "{store}/{register}/{epoch}/"
	log    *slog.Logger

	group *groupCommit // every read-write transaction; see write

	// deny is the denylist's index (denyset.go), replaced whole after
	// each committed change; lookups load it without a lock. denyMu
	// orders the writers, each of which derives its set from the last.
	deny   atomic.Pointer[denySet]
	denyMu sync.Mutex

	mu      sync.RWMutex // guards the in-memory mirror below
	hist    historyIndex
	seen    map[string]int64 // replay key -> expiry, unix ns
	atc     map[string]uint32
	denyVer wire.ListVersion
	denyAt  time.Time   // issuedAt of the last applied denylist message
	allow   allowMirror // allowlist.go, with its own lock
	// denyDetails: listdetails.go
	denyDetails map[string]wire.ListDetail
	// lastFact is the time of the newest peer fact applied (unix ns, 0:
	// none).
	lastFact int64
}

// Open opens or creates the state file at path.
func Open(path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	// bbolt turns an empty file into a new database. An empty file where a
	// state file should be is damage (or an interrupted first start), and
	// starting over silently could hide lost history and outbox.
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("open state file %s: %w: the file is empty; remove it if this register never ran", path, ErrCorrupt)
	}
	var db *bolt.DB
	err = guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout:  opts.LockTimeout,
			MaxSize:  opts.MaxSize,
			OpenFile: opts.OpenFile,
			// The checks below read every page: mapping them all in one
			// call costs less than a fault each.
			MmapFlags: populateFlag,
		})
		if err == nil {
			// Later remaps (the file grew) map only what is read.
			db.MmapFlags = 0
		}
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open state file %s: %w (waited %s for its lock)", path, ErrInUse, opts.LockTimeout)
	case errors.Is(err, ErrCorrupt):
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	case err != nil && (errors.As(err, new(*fs.PathError)) || errors.As(err, new(syscall.Errno))):
		// The file could not be opened, locked or mapped: not its content.
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	case err != nil:
		// bbolt's other open errors (invalid meta, checksum, version,
		// "file size too small", a failed assertion) are about content.
		return nil, fmt.Errorf("open state file %s: %w: %w", path, ErrCorrupt, err)
	}
	s := &Store{
		db:    db,
		group: newGroupCommit(db),
		path:  path,
		opts:  opts,
		log:   opts.Logger.With("state", path),
		hist:  newHistoryIndex(),
		seen:  map[string]int64{},
		atc:   map[string]uint32{},
	}
	if err := guard(s.init); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	if err := guard(s.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	return s, nil
}

// guard turns a panic or memory fault inside bbolt — what a damaged file can
// cause when a page is read — into ErrCorrupt.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}

// init checks the file's structure and meta bucket, creating the layout in
// a new file and migrating an older one. Nothing is written to an existing
// file before it has passed checkPages: committing on top of a damaged page
// can corrupt it further, or loop on a bogus page count.
func (s *Store) init() error {
	var fresh bool
	version := SchemaVersion
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := checkPages(tx); err != nil {
			return err
		}
		meta := tx.Bucket([]byte(bMeta))
		if meta == nil {
			empty := true
			if err := tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil }); err != nil {
				return err
			}
			if !empty {
				return fmt.Errorf("%w: it has buckets but no %q bucket", ErrNotState, bMeta)
			}
			fresh = true
			return nil
		}
		v := meta.Get([]byte(kSchema))
		if len(v) != 8 {
			return fmt.Errorf("%w: meta has no schema version", ErrCorrupt)
		}
		version = binary.BigEndian.Uint64(v)
		for ver := version; ver < SchemaVersion; ver++ {
			if _, ok := migrations[ver]; !ok {
				return fmt.Errorf("%w: schema version %d is older than %d and cannot be migrated; the file was left untouched: deliver its outbox with the old build or move it aside", ErrSchema, ver, SchemaVersion)
			}
		}
		if version > SchemaVersion {
			return fmt.Errorf("%w: schema version %d was written by a newer posguard (this build reads %d); upgrade posguard", ErrSchema, version, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if fresh {
		return s.db.Update(s.create)
	}
	if version < SchemaVersion {
		err := s.db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket([]byte(bMeta))
			for ver := version; ver < SchemaVersion; ver++ {
				if err := migrations[ver](tx); err != nil {
					return fmt.Errorf("migrate schema %d to %d: %w", ver, ver+1, err)
				}
				if err := meta.Put([]byte(kSchema), u64(ver+1)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bMeta))
		for _, name := range allBuckets {
			if tx.Bucket([]byte(name)) == nil {
				return fmt.Errorf("%w: bucket %q missing", ErrCorrupt, name)
			}
		}
		store, register := string(meta.Get([]byte(kStore))), string(meta.Get([]byte(kRegister)))
		if store != s.opts.Store || register != s.opts.Register {
			return fmt.Errorf("%w: it is %s/%s, not %s/%s", ErrWrongRegister, store, register, s.opts.Store, s.opts.Register)
		}
		epoch := string(meta.Get([]byte(kEpoch)))
		if epoch == "" {
			return fmt.Errorf("%w: meta has no epoch", ErrCorrupt)
		}
		s.prefix = s.opts.Store + "/" + s.opts.Register + "/" + epoch + "/"
		return nil
	})
}

func (s *Store) create(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("epoch: %w", err)
	}
	epoch := hex.EncodeToString(b[:])
	meta := tx.Bucket([]byte(bMeta))
	for k, v := range map[string][]byte{
		kSchema:   u64(SchemaVersion),
		kEpoch:    []byte(epoch),
		kStore:    []byte(s.opts.Store),
		kRegister: []byte(s.opts.Register),
	} {
		if err := meta.Put([]byte(k), v); err != nil {
			return err
		}
	}
	s.prefix = s.opts.Store + "/" + s.opts.Register + "/" + epoch + "/"
	return nil
}

// load fills the in-memory mirror from the file.
func (s *Store) load() error {
	return s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket([]byte(bSeen)).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: seen token %q: bad expiry", ErrCorrupt, k)
			}
			s.seen[string(k)] = int64(binary.BigEndian.Uint64(v))
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket([]byte(bATC)).ForEach(func(k, v []byte) error {
			if len(v) != 12 {
				return fmt.Errorf("%w: ATC of %q: bad value", ErrCorrupt, k)
			}
			s.atc[string(k)] = binary.BigEndian.Uint32(v)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket([]byte(bHistory)).ForEach(func(k, v []byte) error {
			sl, store, register, err := decodeSale(k, v)
			if err != nil {
				return fmt.Errorf("%w: history %x: %w", ErrCorrupt, k, err)
			}
			s.hist.add(sl, store, register)
			return nil
		})
		if err != nil {
			return err
		}
		if err := s.loadPeers(tx); err != nil {
			return err
		}
		if err := s.allow.load(tx); err != nil {
			return err
		}
		if s.denyDetails, err = loadDenylistDetails(tx); err != nil { // listdetails.go
			return err
		}
		s.denyVer, s.denyAt = denylistMeta(tx.Bucket([]byte(bMeta)))
		// Read every byte of every key and value once, so a damaged page
		// (an element pointing outside the file) faults now, under guard,
		// rather than in a later commit that copies it. The denylist's
		// keys are read by hashing them into its index, the rest by a
		// checksum.
		empty := newDenySet(maphash.MakeSeed(), s.opts.denyHash, nil)
		hashes, err := readDenylist(tx.Bucket([]byte(bDeny)), empty)
		if err != nil {
			return err
		}
		// The index is sorted on a goroutine of its own (it reads only the
		// hashes) while this one and bbolt's check read the file.
		built := make(chan *denySet, 1)
		go func() { built <- newDenySet(empty.seed, empty.hashOf, hashes) }()
		var sum uint32
		err = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == bDeny {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				sum = crc32.Update(crc32.Update(sum, crc32.IEEETable, k), crc32.IEEETable, v)
				return nil
			})
		})
		if err != nil {
			return err
		}
		// Then bbolt's own check of the tree: page bounds, double
		// references, key order. It runs on a goroutine of its own, which is
		// why the fault-prone reads above come first. Its channel must be
		// drained: the check reads the transaction until it closes it.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
		}
		if first != nil {
			return first
		}
		s.deny.Store(<-built)
		// The passes above made the whole file resident; what the
		// decision path needs from it is in memory now, so hand its pages
		// back (the kernel keeps them cached).
		releaseMapping(s.db, tx)
		return nil
	})
}

// readDenylist hashes every key of the denylist bucket into an array of
// its exact size, reading each byte of each key and value.
func readDenylist(b *bolt.Bucket, set *denySet) ([]uint64, error) {
	hashes := make([]uint64, 0, b.Stats().KeyN)
	var sum uint32
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(hashes) == cap(hashes) {
			return nil, fmt.Errorf("%w: the denylist holds more keys than its pages count", ErrCorrupt)
		}
		hashes = append(hashes, set.hashBytes(k))
		if len(v) > 0 { // none are, but a damaged page could say so
			sum = crc32.Update(sum, crc32.IEEETable, v)
		}
	}
	if len(hashes) != cap(hashes) {
		return nil, fmt.Errorf("%w: the denylist holds %d keys, its pages count %d", ErrCorrupt, len(hashes), cap(hashes))
	}
	return hashes, nil
}

// Close waits for pending batches and closes the file; bbolt has fsynced
// every committed transaction already.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", s.path, err)
	}
	return nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bolt.Bucket, key string) uint64 {
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// nanos maps t to unix nanoseconds, clamping times outside int64's range so
// a zero "since" means "from the beginning".
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero() || t.Year() < 1678:
		return math.MinInt64
	case t.Year() > 2261:
		return math.MaxInt64
	}
	return t.UnixNano()
}

var _ policy.History = (*Store)(nil)

// eventKey is the outbox key of seq: big-endian so bbolt's order is seq order.
func eventKey(seq uint64) []byte { return u64(seq) }

// ownSeq returns the seq of an event id written by this file, or false.
func (s *Store) ownSeq(id string) (uint64, bool) {
	if !strings.HasPrefix(id, s.prefix) {
		return 0, false
	}
	_, _, _, seq, err := event.SplitID(id)
	return seq, err == nil
}

// write runs fn in a read-write transaction and returns once it is
// committed and synced. Concurrent writes share one transaction and one
// fsync (group commit, see groupCommit); a write with no other in flight
// (the usual case at a till) runs at once. fn may run more than once (the
// others of its batch are run again when one fails), so it must only set,
// not accumulate, what it reports.
func (s *Store) write(fn func(*bolt.Tx) error) error {
	return s.group.do(fn)
}

// checkPages walks the page headers below the high-water mark the way bbolt
// lays them out: each page is free, or heads a run of 1+overflow pages of
// type branch, leaf or freelist. A damaged header (a bogus overflow makes
// bbolt loop for minutes when it frees the page) fails here, before any
// write. bbolt's own tx.Check is not used: it reads pages on a goroutine of
// its own, where a fault on a truncated file would crash the process
// instead of becoming an error (see guard).
func checkPages(tx *bolt.Tx) error {
	for id := 2; ; {
		info, err := tx.Page(id)
		if err != nil {
			return fmt.Errorf("%w: page %d: %w", ErrCorrupt, id, err)
		}
		if info == nil { // at the high-water mark
			return nil
		}
		switch info.Type {
		case "free":
			id++
			continue
		case "branch", "leaf", "freelist":
		default:
			return fmt.Errorf("%w: page %d has type %q", ErrCorrupt, id, info.Type)
		}
		next := id + 1 + info.OverflowCount
		if next <= id {
			return fmt.Errorf("%w: page %d: overflow %d", ErrCorrupt, id, info.OverflowCount)
		}
		if last, err := tx.Page(next - 1); err != nil || last == nil {
			return fmt.Errorf("%w: page %d: overflow %d runs past the end of the file", ErrCorrupt, id, info.OverflowCount)
		}
		id = next
	}
}
