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
}

// HistoryFile is the JSON document `posguard policy eval --history` reads.
type HistoryFile struct {
	Sales    []PastSale `json:"sales"`
	Denylist []string   `json:"denylist,omitempty"`
}

// MemoryHistory is a History held in memory: for `policy eval`, tests and
// backtests. Lookups scan the account's or register's sales, which is fine
// for the thousands of sales a window holds, and allocate nothing.
type MemoryHistory struct {
	mu        sync.RWMutex
	byAccount map[string][]PastSale
	byReg     map[regKey][]PastSale
	deny      map[string]bool
}

type regKey struct{ store, register string }

// NewMemoryHistory builds a history from past sales and a denylist.
func NewMemoryHistory(sales []PastSale, denylist []string) *MemoryHistory {
	h := &MemoryHistory{
		byAccount: map[string][]PastSale{},
		byReg:     map[regKey][]PastSale{},
		deny:      map[string]bool{},
	}
	for _, s := range sales {
		h.add(s)
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
		return nil, fmt.Errorf("read history %s: %w", path, err)
	}
	h, err := LoadHistory(data)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	return h, nil
}

// Add records a sale, as the backtest does after each decision.
func (h *MemoryHistory) Add(s PastSale) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.add(s)
}

func (h *MemoryHistory) add(s PastSale) {
	// Keep each list in time order so lookups can stop early.
	ins := func(list []PastSale) []PastSale {
		i := sort.Search(len(list), func(i int) bool { return list[i].At.After(s.At) })
		list = append(list, PastSale{})
		copy(list[i+1:], list[i:])
		list[i] = s
		return list
	}
	if s.Account != "" {
		h.byAccount[s.Account] = ins(h.byAccount[s.Account])
	}
	k := regKey{s.Store, s.Register}
	h.byReg[k] = ins(h.byReg[k])
}

// Deny puts an account on the denylist.
func (h *MemoryHistory) Deny(account string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deny[account] = true
}

// sums returns what of the sale is in the categories; an empty list means
// all categories.
func saleSums(s *PastSale, cats []string) (matched bool, qty int, amount int64) {
	for i := range s.Lines {
		l := &s.Lines[i]
		c := l.Category
		if c == "" {
			c = "unknown"
		}
		if !inCategories(cats, c) {
			continue
		}
		matched = true
		qty += l.Quantity
		amount += int64(l.Quantity) * l.UnitPrice
	}
	return matched, qty, amount
}

// firstAt finds the first sale at or after since in a time-ordered list.
func firstAt(list []PastSale, since time.Time) int {
	return sort.Search(len(list), func(i int) bool { return !list[i].At.Before(since) })
}

// AccountSales implements History: Sales counts the sales with at least one
// line in the categories.
func (h *MemoryHistory) AccountSales(account string, since time.Time, categories []string) Totals {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var t Totals
	list := h.byAccount[account]
	for i := firstAt(list, since); i < len(list); i++ {
		ok, q, a := saleSums(&list[i], categories)
		if !ok {
			continue
		}
		t.Sales++
		t.Quantity += q
		t.Amount += a
	}
	return t
}

// RegisterAccounts implements History. Distinct accounts are counted by
// checking earlier sales of the window, so no set is allocated.
func (h *MemoryHistory) RegisterAccounts(store, register string, since time.Time, categories []string, exclude string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	list := h.byReg[regKey{store, register}]
	start := firstAt(list, since)
	n := 0
	for i := start; i < len(list); i++ {
		a := list[i].Account
		if a == "" || a == exclude {
			continue
		}
		if ok, _, _ := saleSums(&list[i], categories); !ok {
			continue
		}
		dup := false
		for j := start; j < i; j++ {
			if list[j].Account == a {
				if ok, _, _ := saleSums(&list[j], categories); ok {
					dup = true
					break
				}
			}
		}
		if !dup {
			n++
		}
	}
	return n
}

// Denylisted implements History.
func (h *MemoryHistory) Denylisted(account string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.deny[account]
}
