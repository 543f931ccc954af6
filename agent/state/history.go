package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/posguard/posguard/policy"
)

// sale is one decided sale as the history keeps it: lines folded per
// category so window lookups touch a few numbers per sale.
type sale struct {
	at      int64 // unix ns
	account string
	id      uint32 // the account's number in historyIndex.ids, for cheap dedup
	// counts is false for denied sales: they did not happen, so they do not
	// add to the account's spending, but the attempt still counts towards
	// the distinct accounts seen at the register and the store (the
	// Shinjuku pattern).
	counts bool
	// store and register say where it was made (this till or a peer), so
	// an account's list can be read per register or per store.
	store, register string
	cats            []catTotal
}

type catTotal struct {
	Cat    string `json:"k"`
	Qty    int    `json:"q"`
	Amount int64  `json:"m"`
}

// match sums the lines in categories (all lines when categories is empty).
func (sl *sale) match(categories []string) (qty int, amount int64, hit bool) {
	if len(categories) == 0 {
		for i := range sl.cats {
			qty += sl.cats[i].Qty
			amount += sl.cats[i].Amount
		}
		return qty, amount, true
	}
	for i := range sl.cats {
		for _, c := range categories {
			if sl.cats[i].Cat == c {
				qty += sl.cats[i].Qty
				amount += sl.cats[i].Amount
				hit = true
				break
			}
		}
	}
	return qty, amount, hit
}

// historyIndex is the in-memory view of the history bucket, each list sorted
// by time: per account, per register and per store, so a distinct-account
// count walks only the window of the till or the store it is asked about.
// Registers are keyed by nested maps so lookups need no key concatenation
// (and no allocation).
type historyIndex struct {
	accounts  map[string][]*sale
	registers map[string]map[string][]*sale
	stores    map[string][]*sale
	ids       map[string]uint32 // account -> number (from 1) while it has sales
	lastID    uint32
}

func newHistoryIndex() historyIndex {
	return historyIndex{accounts: map[string][]*sale{}, registers: map[string]map[string][]*sale{},
		stores: map[string][]*sale{}, ids: map[string]uint32{}}
}

func insertSorted(list []*sale, sl *sale) []*sale {
	// Sales nearly always arrive in time order; concurrent commits may
	// swap neighbours.
	i := len(list)
	for i > 0 && list[i-1].at > sl.at {
		i--
	}
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = sl
	return list
}

func (h *historyIndex) add(sl *sale, store, register string) {
	id, ok := h.ids[sl.account]
	if !ok {
		h.lastID++
		if h.lastID == 0 { // wrapped after 4e9 accounts: 0 means "none"
			h.lastID = 1
		}
		id = h.lastID
		h.ids[sl.account] = id
	}
	sl.id = id
	sl.store, sl.register = store, register
	h.accounts[sl.account] = insertSorted(h.accounts[sl.account], sl)
	h.stores[store] = insertSorted(h.stores[store], sl)
	regs := h.registers[store]
	if regs == nil {
		regs = map[string][]*sale{}
		h.registers[store] = regs
	}
	regs[register] = insertSorted(regs[register], sl)
}

func pruneList(list []*sale, cutoff int64) []*sale {
	i := sort.Search(len(list), func(i int) bool { return list[i].at >= cutoff })
	if i == 0 {
		return list
	}
	// Copy to a fresh slice so the pruned sales can be collected.
	return append([]*sale(nil), list[i:]...)
}

// prune drops sales before cutoff and returns how many sales it dropped.
func (h *historyIndex) prune(cutoff int64) int {
	n := 0
	for acct, list := range h.accounts {
		kept := pruneList(list, cutoff)
		n += len(list) - len(kept)
		if len(kept) == 0 {
			// Register lists are pruned at the same cutoff, so no sale
			// of the account remains anywhere: its number can go too.
			delete(h.accounts, acct)
			delete(h.ids, acct)
		} else {
			h.accounts[acct] = kept
		}
	}
	for store, regs := range h.registers {
		for reg, list := range regs {
			if kept := pruneList(list, cutoff); len(kept) == 0 {
				delete(regs, reg)
			} else {
				regs[reg] = kept
			}
		}
		if len(regs) == 0 {
			delete(h.registers, store)
		}
	}
	for store, list := range h.stores {
		if kept := pruneList(list, cutoff); len(kept) == 0 {
			delete(h.stores, store)
		} else {
			h.stores[store] = kept
		}
	}
	return n
}

// AccountSales implements policy.History. Denied sales are not counted.
// An account's list is short (its own sales in the retention), so it is
// filtered by store and register as it is walked.
func (s *Store) AccountSales(account, store, register string, since time.Time, categories []string) policy.Totals {
	from := nanos(since)
	var t policy.Totals
	s.mu.RLock()
	list := s.hist.accounts[account]
	for i := len(list) - 1; i >= 0 && list[i].at >= from; i-- {
		sl := list[i]
		if !sl.counts || sl.store != store || (register != "" && sl.register != register) {
			continue
		}
		if q, amt, hit := sl.match(categories); hit {
			t.Sales++
			t.Quantity += q
			t.Amount += amt
		}
	}
	s.mu.RUnlock()
	return t
}

// DistinctAccounts implements policy.History. Every decided attempt counts,
// denied ones included.
func (s *Store) DistinctAccounts(store, register string, since time.Time, categories []string, exclude string) int {
	from := nanos(since)
	var set idSet
	s.mu.RLock()
	excludeID := s.hist.ids[exclude] // 0 when unknown: no sale has id 0
	list := s.hist.stores[store]
	if register != "" {
		list = s.hist.registers[store][register]
	}
	for i := len(list) - 1; i >= 0 && list[i].at >= from; i-- {
		sl := list[i]
		if sl.id == excludeID {
			continue
		}
		if _, _, hit := sl.match(categories); hit {
			set.add(sl.id)
		}
	}
	s.mu.RUnlock()
	return set.len()
}

// idSet counts distinct account numbers in an open-addressing table on the
// stack; only a window with more than idSetMax distinct accounts spills to
// a heap map.
type idSet struct {
	table [idSetSize]uint32 // 0 = empty
	n     int
	spill map[uint32]struct{}
}

const (
	idSetSize = 512
	idSetMax  = idSetSize * 3 / 4
)

func (s *idSet) add(id uint32) {
	if s.spill != nil {
		s.spill[id] = struct{}{}
		return
	}
	for h := (id * 2654435761) >> 23; ; h = (h + 1) % idSetSize { // Fibonacci hashing to 9 bits
		switch s.table[h] {
		case id:
			return
		case 0:
			s.table[h] = id
			s.n++
			if s.n > idSetMax {
				s.spill = make(map[uint32]struct{}, 2*s.n)
				for _, v := range s.table {
					if v != 0 {
						s.spill[v] = struct{}{}
					}
				}
			}
			return
		}
	}
}

func (s *idSet) len() int {
	if s.spill != nil {
		return len(s.spill)
	}
	return s.n
}

// Seen reports whether a one-time token id has been used. A mark stays until
// Prune removes it after its expiry, so an expired mark still counts.
func (s *Store) Seen(replayKey string) bool {
	s.mu.RLock()
	_, ok := s.seen[replayKey]
	s.mu.RUnlock()
	return ok
}

// LastATC is the highest EMV application transaction counter accepted for
// the account.
func (s *Store) LastATC(account string) (uint32, bool) {
	s.mu.RLock()
	v, ok := s.atc[account]
	s.mu.RUnlock()
	return v, ok
}

// storedSale is the history bucket value.
type storedSale struct {
	Account  string         `json:"a"`
	Store    string         `json:"s"`
	Register string         `json:"r"`
	Outcome  policy.Outcome `json:"o"`
	Cats     []catTotal     `json:"c"`
}

// historyKey orders the bucket by time, then outbox seq for uniqueness, so
// pruning is a scan from the start.
func historyKey(at int64, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(at)^(1<<63)) // sign flip: negative times sort first
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func historyKeyTime(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
}

func saleFromRequest(req *policy.Request, outcome policy.Outcome) (*sale, storedSale) {
	st := storedSale{Account: req.Payment.Account, Store: req.Store, Register: req.Register, Outcome: outcome}
	for _, l := range req.Lines {
		found := false
		for i := range st.Cats {
			if st.Cats[i].Cat == l.Category {
				st.Cats[i].Qty += l.Quantity
				st.Cats[i].Amount += int64(l.Quantity) * l.UnitPrice
				found = true
				break
			}
		}
		if !found {
			st.Cats = append(st.Cats, catTotal{Cat: l.Category, Qty: l.Quantity, Amount: int64(l.Quantity) * l.UnitPrice})
		}
	}
	return &sale{at: nanos(req.At), account: st.Account, counts: outcome != policy.Deny, cats: st.Cats}, st
}

// decodeSale parses one history entry read from the file.
func decodeSale(k, v []byte) (*sale, string, string, error) {
	if len(k) != 16 {
		return nil, "", "", fmt.Errorf("key of %d bytes, want 16", len(k))
	}
	var st storedSale
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, "", "", fmt.Errorf("decode: %w", err)
	}
	if st.Account == "" {
		return nil, "", "", errors.New("no account")
	}
	switch st.Outcome {
	case policy.Allow, policy.Review, policy.Deny:
	default:
		return nil, "", "", fmt.Errorf("outcome %q", st.Outcome)
	}
	return &sale{at: historyKeyTime(k), account: st.Account, counts: st.Outcome != policy.Deny, cats: st.Cats}, st.Store, st.Register, nil
}
