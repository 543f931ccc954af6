package backtest

import (
	"sync"
	"time"

	"github.com/posguard/posguard/policy"
)

// history is the register memory a replay rebuilds as it goes. It follows
// agent/state's rules so a backtest sees what a register would have seen:
//   - every decided sale with an account is recorded, after its decision;
//   - a denied sale did not happen, so it adds nothing to the account's
//     sales, amount or quantity (account_velocity);
//   - but the attempt still counts among the distinct accounts seen at the
//     register (register_accounts: a crew trying account after account is
//     exactly what that rule is for);
//   - sales older than the retention are forgotten, as the agent prunes.
//
// Sales arrive in time order (Read sorts them), so each list is appended to
// and lookups walk back from the newest entry.
type history struct {
	mu        sync.Mutex
	retention time.Duration
	accounts  map[string][]*past
	registers map[regKey][]*past
	ids       map[string]uint32
	deny      map[string]bool
	// stamp[id] == call marks the account as counted in the current
	// RegisterAccounts call: distinct counting without a set per call.
	stamp      []uint32
	call       uint32
	added      int
	pruneEvery int
	newest     time.Time
}

type regKey struct{ store, register string }

type past struct {
	at     time.Time
	id     uint32
	counts bool
	cats   []catTotal
}

type catTotal struct {
	cat    string
	qty    int
	amount int64
}

func newHistory(retention time.Duration, denylist []string) *history {
	h := &history{
		retention:  retention,
		accounts:   map[string][]*past{},
		registers:  map[regKey][]*past{},
		ids:        map[string]uint32{},
		deny:       map[string]bool{},
		stamp:      []uint32{0},
		pruneEvery: 1 << 16,
	}
	for _, a := range denylist {
		h.deny[a] = true
	}
	return h
}

// add records a decided sale. Categories left empty in the request are
// resolved from the policy catalog, as Evaluate does for the current sale.
func (h *history) add(p *policy.Policy, req *policy.Request, outcome policy.Outcome) {
	acct := req.Payment.Account
	if acct == "" {
		return // agent/state keeps no history for a sale without an account
	}
	s := &past{at: req.At, counts: outcome != policy.Deny}
	for i := range req.Lines {
		l := &req.Lines[i]
		c := l.Category
		if c == "" {
			c = "unknown"
			if it, ok := p.Item(l.JAN); ok {
				c = it.Category
			}
		}
		found := false
		for j := range s.cats {
			if s.cats[j].cat == c {
				s.cats[j].qty += l.Quantity
				s.cats[j].amount += int64(l.Quantity) * l.UnitPrice
				found = true
				break
			}
		}
		if !found {
			s.cats = append(s.cats, catTotal{cat: c, qty: l.Quantity, amount: int64(l.Quantity) * l.UnitPrice})
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.ids[acct]
	if !ok {
		id = uint32(len(h.stamp))
		h.stamp = append(h.stamp, 0)
		h.ids[acct] = id
	}
	s.id = id
	h.accounts[acct] = append(h.accounts[acct], s)
	k := regKey{req.Store, req.Register}
	h.registers[k] = append(h.registers[k], s)
	if req.At.After(h.newest) {
		h.newest = req.At
	}
	h.added++
	if h.added%h.pruneEvery == 0 {
		h.prune(h.newest.Add(-h.retention))
	}
}

// prune drops sales before cutoff. Account ids stay assigned: they are
// cheap, and reusing one could merge two accounts in a distinct count.
func (h *history) prune(cutoff time.Time) {
	keep := func(list []*past) []*past {
		i := 0
		for i < len(list) && list[i].at.Before(cutoff) {
			i++
		}
		if i == 0 {
			return list
		}
		return append([]*past(nil), list[i:]...)
	}
	for a, list := range h.accounts {
		if kept := keep(list); len(kept) == 0 {
			delete(h.accounts, a)
		} else {
			h.accounts[a] = kept
		}
	}
	for k, list := range h.registers {
		if kept := keep(list); len(kept) == 0 {
			delete(h.registers, k)
		} else {
			h.registers[k] = kept
		}
	}
}

func (s *past) match(categories []string) (qty int, amount int64, hit bool) {
	for i := range s.cats {
		c := &s.cats[i]
		if len(categories) > 0 && !contains(categories, c.cat) {
			continue
		}
		hit = true
		qty += c.qty
		amount += c.amount
	}
	return qty, amount, hit
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// AccountSales implements policy.History; denied sales do not count.
func (h *history) AccountSales(account string, since time.Time, categories []string) policy.Totals {
	h.mu.Lock()
	defer h.mu.Unlock()
	var t policy.Totals
	list := h.accounts[account]
	for i := len(list) - 1; i >= 0 && !list[i].at.Before(since); i-- {
		s := list[i]
		if !s.counts {
			continue
		}
		if q, a, hit := s.match(categories); hit {
			t.Sales++
			t.Quantity += q
			t.Amount += a
		}
	}
	return t
}

// RegisterAccounts implements policy.History; denied attempts count.
func (h *history) RegisterAccounts(store, register string, since time.Time, categories []string, exclude string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.call++
	if h.call == 0 { // wrapped: old stamps could collide with the new call number
		clear(h.stamp)
		h.call = 1
	}
	excludeID, ok := h.ids[exclude]
	if !ok {
		excludeID = 0 // no sale has id 0
	}
	n := 0
	list := h.registers[regKey{store, register}]
	for i := len(list) - 1; i >= 0 && !list[i].at.Before(since); i-- {
		s := list[i]
		if s.id == excludeID || h.stamp[s.id] == h.call {
			continue
		}
		if _, _, hit := s.match(categories); hit {
			h.stamp[s.id] = h.call
			n++
		}
	}
	return n
}

// Denylisted implements policy.History: the accounts given with
// --denylist are on the list for the whole replay.
func (h *history) Denylisted(account string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.deny[account]
}
