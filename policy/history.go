package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// PastSale is one sale a History remembers: the shape of the "sales" of a
// history file and what the agent records after each decision.
type PastSale struct {
	At       time.Time `json:"at"`
	Account  string    `json:"account"`
	Store    string    `json:"store"`
	Register string    `json:"register"`
	Lines    []Line    `json:"lines"`
	// Denied marks a refused attempt, as agent/state records a denied sale:
	// it did not happen, so it adds nothing to the account's sales, amount
	// or quantity, but the account still counts among the distinct accounts
	// seen at the register and the store.
	Denied bool `json:"denied,omitempty"`
}

// HistoryFile is the JSON document `posguard policy eval --history` reads.
type HistoryFile struct {
	Sales    []PastSale `json:"sales"`
	Denylist []string   `json:"denylist,omitempty"`
}

// MemoryHistory is a History held in memory: for `policy eval`, tests and
// backtests. Each sale is kept once, with its totals per category worked
// out when it is added, in a time-ordered list per account, per register
// and per store; lookups walk a list back from its newest sale to the
// start of the window and allocate nothing (an account's list is filtered
// by store and register on the way). DistinctAccounts counts distinct
// accounts with a stamp per account id instead of a set, so it is linear
// in the window and allocation-free too.
//
// It is safe for concurrent use. All methods take one Mutex (not an
// RWMutex): DistinctAccounts writes the stamps, so no lookup is read-only.
type MemoryHistory struct {
	mu        sync.Mutex
	ids       map[string]uint32 // account → id, from 1; never reused
	byAccount map[string][]*memSale
	byReg     map[regKey][]*memSale
	byStore   map[string][]*memSale
	deny      map[string]bool
	held      int // sales held (each is in one list of each index)
	// stamp[id] == call marks the account as counted in the current
	// DistinctAccounts call.
	stamp []uint32
	call  uint32
	// catBits gives each category seen one bit, up to 64, so that a
	// lookup tests a sale's categories with an AND instead of comparing
	// strings; past 64 (catsFull) lookups compare the strings.
	catBits  map[string]uint64
	catsFull bool
}

type regKey struct{ store, register string }

// memSale is a sale as MemoryHistory keeps it.
type memSale struct {
	at     time.Time
	id     uint32
	denied bool
	place  regKey // where it was made, to filter an account's list
	cats   []catTotal
	mask   uint64 // the catBits of cats
	// few holds cats for a sale of up to len(few) categories, most of
	// them: one allocation per sale instead of two.
	few [3]catTotal
}

// catTotal is what a sale holds of one category.
type catTotal struct {
	cat    string
	bit    uint64
	qty    int
	amount int64
}

// NewMemoryHistory builds a history from past sales and a denylist.
func NewMemoryHistory(sales []PastSale, denylist []string) *MemoryHistory {
	h := &MemoryHistory{
		ids:       map[string]uint32{},
		byAccount: map[string][]*memSale{},
		byReg:     map[regKey][]*memSale{},
		byStore:   map[string][]*memSale{},
		deny:      map[string]bool{},
		stamp:     []uint32{0}, // id 0 is no account
		catBits:   map[string]uint64{},
	}
	for i := range sales {
		h.add(&sales[i])
	}
	for _, a := range denylist {
		h.deny[a] = true
	}
	return h
}

// LoadHistory decodes a HistoryFile (unknown fields rejected).
func LoadHistory(data []byte) (*MemoryHistory, error) {
	var f HistoryFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode history: %w", err)
	}
	for i, s := range f.Sales {
		if s.At.IsZero() {
			return nil, fmt.Errorf("decode history: sales[%d].at: is required", i)
		}
	}
	return NewMemoryHistory(f.Sales, f.Denylist), nil
}

// LoadHistoryFile reads a HistoryFile from disk.
func LoadHistoryFile(path string) (*MemoryHistory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err) // the *PathError names the file
	}
	h, err := LoadHistory(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err) // "decode history: ..."
	}
	return h, nil
}

// Add records a sale, as the backtest does after each decision. Sales may
// come in any time order; in order (each at or after the previous one) an
// add is an append. A line with an empty category counts as "unknown". The
// lines are summed up here and not retained. A sale without an account
// counts for no lookup and is not kept.
func (h *MemoryHistory) Add(s PastSale) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.add(&s)
}

func (h *MemoryHistory) add(s *PastSale) {
	if s.Account == "" {
		return
	}
	m := &memSale{at: s.At, denied: s.Denied, place: regKey{s.Store, s.Register}}
	m.cats = m.few[:0]
	for i := range s.Lines {
		l := &s.Lines[i]
		c := l.Category
		if c == "" {
			c = "unknown"
		}
		amount := int64(l.Quantity) * l.UnitPrice
		found := false
		for j := range m.cats {
			if m.cats[j].cat == c {
				m.cats[j].qty += l.Quantity
				m.cats[j].amount += amount
				found = true
				break
			}
		}
		if !found {
			m.cats = append(m.cats, catTotal{cat: c, qty: l.Quantity, amount: amount})
		}
	}
	for j := range m.cats {
		m.cats[j].bit = h.bitOf(m.cats[j].cat)
		m.mask |= m.cats[j].bit
	}
	id, ok := h.ids[s.Account]
	if !ok {
		id = uint32(len(h.stamp))
		h.stamp = append(h.stamp, 0)
		h.ids[s.Account] = id
	}
	m.id = id
	h.byAccount[s.Account] = insertSale(h.byAccount[s.Account], m)
	h.byReg[m.place] = insertSale(h.byReg[m.place], m)
	h.byStore[s.Store] = insertSale(h.byStore[s.Store], m)
	h.held++
}

// insertSale puts m into a time-ordered list after the sales at or before
// it: an append when it is the newest.
func insertSale(list []*memSale, m *memSale) []*memSale {
	n := len(list)
	if n == 0 || !list[n-1].at.After(m.at) {
		return append(list, m)
	}
	i := sort.Search(n, func(i int) bool { return list[i].at.After(m.at) })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = m
	return list
}

// Prune forgets the sales before the given time, as the agent drops sales
// older than its retention. Account ids stay assigned: they are cheap, and
// reusing one could merge two accounts in a distinct count.
func (h *MemoryHistory) Prune(before time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := func(list []*memSale) []*memSale {
		i := 0
		for i < len(list) && list[i].at.Before(before) {
			i++
		}
		if i == 0 {
			return list
		}
		return append([]*memSale(nil), list[i:]...)
	}
	for a, list := range h.byAccount {
		if kept := keep(list); len(kept) == 0 {
			delete(h.byAccount, a)
		} else {
			h.byAccount[a] = kept
		}
	}
	for k, list := range h.byReg {
		if kept := keep(list); len(kept) == 0 {
			delete(h.byReg, k)
		} else {
			h.byReg[k] = kept
		}
	}
	for st, list := range h.byStore {
		kept := keep(list)
		h.held -= len(list) - len(kept)
		if len(kept) == 0 {
			delete(h.byStore, st)
		} else {
			h.byStore[st] = kept
		}
	}
}

// Len is the number of sales the history holds.
func (h *MemoryHistory) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// Deny puts an account on the denylist.
func (h *MemoryHistory) Deny(account string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deny[account] = true
}

// match returns what of the sale is in the categories (all of it when none
// are given); hit says whether any of its lines was in them.
func (m *memSale) match(categories []string) (qty int, amount int64, hit bool) {
	for i := range m.cats {
		c := &m.cats[i]
		if !inCategories(categories, c.cat) {
			continue
		}
		hit = true
		qty += c.qty
		amount += c.amount
	}
	return qty, amount, hit
}

// bitOf is the category's bit, given it when first seen; 0 once 64 are
// taken (catsFull).
func (h *MemoryHistory) bitOf(c string) uint64 {
	if b, ok := h.catBits[c]; ok {
		return b
	}
	if len(h.catBits) == 64 {
		h.catsFull = true
		return 0
	}
	b := uint64(1) << len(h.catBits)
	h.catBits[c] = b
	return b
}

// query is a lookup's categories as bits, every bit for none given (all
// categories count); a category no sale has had has no bit and matches
// nothing, as it would compared as a string. ok is false past 64
// categories: the lookup then compares strings (match).
func (h *MemoryHistory) query(categories []string) (mask uint64, ok bool) {
	if h.catsFull {
		return 0, false
	}
	if len(categories) == 0 {
		return ^uint64(0), true
	}
	for _, c := range categories {
		mask |= h.catBits[c]
	}
	return mask, true
}

// matchBits is match for a query's bits.
func (m *memSale) matchBits(q uint64) (qty int, amount int64, hit bool) {
	if m.mask&q == 0 {
		return 0, 0, false
	}
	for i := range m.cats {
		if c := &m.cats[i]; c.bit&q != 0 {
			qty += c.qty
			amount += c.amount
		}
	}
	return qty, amount, true
}

// AccountSales implements History: Sales counts the sales with at least one
// line in the categories. Denied sales do not count.
func (h *MemoryHistory) AccountSales(account, store, register string, since time.Time, categories []string) Totals {
	h.mu.Lock()
	defer h.mu.Unlock()
	var t Totals
	q, bits := h.query(categories)
	list := h.byAccount[account]
	for i := len(list) - 1; i >= 0 && !list[i].at.Before(since); i-- {
		m := list[i]
		if m.denied || m.place.store != store || (register != "" && m.place.register != register) {
			continue
		}
		var qty int
		var a int64
		var hit bool
		if bits {
			qty, a, hit = m.matchBits(q)
		} else {
			qty, a, hit = m.match(categories)
		}
		if hit {
			t.Sales++
			t.Quantity += qty
			t.Amount += a
		}
	}
	return t
}

// DistinctAccounts implements History. Denied attempts count: a crew trying
// account after account is what the rule is for.
func (h *MemoryHistory) DistinctAccounts(store, register string, since time.Time, categories []string, exclude string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.call++
	if h.call == 0 { // wrapped: old stamps could collide with the new call number
		clear(h.stamp)
		h.call = 1
	}
	excludeID := h.ids[exclude] // 0, which no sale has, when unknown
	q, bits := h.query(categories)
	n := 0
	list := h.byStore[store]
	if register != "" {
		list = h.byReg[regKey{store, register}]
	}
	for i := len(list) - 1; i >= 0 && !list[i].at.Before(since); i-- {
		m := list[i]
		if m.id == excludeID || h.stamp[m.id] == h.call {
			continue
		}
		hit := m.mask&q != 0
		if !bits {
			_, _, hit = m.match(categories)
		}
		if hit {
			h.stamp[m.id] = h.call
			n++
		}
	}
	return n
}

// Denylisted implements History.
func (h *MemoryHistory) Denylisted(account string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.deny[account]
}
