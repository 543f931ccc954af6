package hq

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/wire"
)

// The console's fleet page: a page of stores at a glance, one store's
// registers (GET /v1/fleet?store=S, http.go), where a policy push stands,
// and a stream of status changes so the page follows a rollout live.

// streamQueue is how many status changes a console stream may fall behind
// before it is cut off (the page reconnects and reloads).
const streamQueue = 1024

func (s *Service) fleetRoutes() []Route {
	return []Route{
		// Stores by id, each with its registers counted: ?after=STORE&limit=N.
		{"GET /v1/fleet/stores", apiauth.Read, http.HandlerFunc(s.fleetStores)},
		// Server-sent events: "policies" (the retained policies) first and
		// on every push, "status" (a fleet entry) whenever a register's
		// status is stored.
		{"GET /v1/fleet/stream", apiauth.Read, http.HandlerFunc(s.fleetStream)},
		// Where the registers stand with the pushed policy:
		// ?scope=all|STORE&version=N&limit=N.
		{"GET /v1/policy/rollout", apiauth.Read, http.HandlerFunc(s.policyRollout)},
	}
}

// page reads the after and limit parameters of a paged listing.
func page(r *http.Request) (after string, limit int, err error) {
	limit = 100
	if v := r.FormValue("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 || limit > store.MaxFleetPage {
			return "", 0, fmt.Errorf("limit: want an integer from 1 to %d", store.MaxFleetPage)
		}
	}
	return r.FormValue("after"), limit, nil
}

// storesPage is GET /v1/fleet/stores: Next, when set, is the after of the
// following page.
type storesPage struct {
	Stores []store.StoreSummary `json:"stores"`
	Next   string               `json:"next,omitempty"`
}

func (s *Service) fleetStores(w http.ResponseWriter, r *http.Request) {
	after, limit, err := page(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	stores, err := s.cfg.Store.FleetStores(r.Context(), after, limit)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	out := storesPage{Stores: stores}
	if len(stores) == limit {
		out.Next = stores[len(stores)-1].Store
	}
	writeJSON(w, out)
}

// fleetOf is GET /v1/fleet?store=S: the store's registers, paged by
// register (?after=REGISTER&limit=N), the stored view with the statuses
// seen live laid over. It skips the resynchronisation of the unfiltered
// form, which makes the broker resend the whole fleet's statuses.
func (s *Service) fleetOf(w http.ResponseWriter, r *http.Request, storeID string) {
	if err := wire.ValidateStore(storeID); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("store: %w", err))
		return
	}
	after, limit, err := page(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	regs, err := s.cfg.Store.FleetOf(r.Context(), storeID, after, limit)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	regs = s.live.overlayStore(storeID, after, limit, regs)
	out := make([]fleetEntry, len(regs))
	for i, reg := range regs {
		out[i] = entry(reg)
	}
	writeJSON(w, out)
}

// overlayStore is overlay for one page of one store's registers: live
// statuses win unless older, and registers only seen live join the page
// where they sort into it.
func (l *liveFleet) overlayStore(storeID, after string, limit int, regs []store.Register) []store.Register {
	var mine []store.Register
	l.mu.Lock()
	for _, live := range l.regs {
		if live.Store == storeID && live.Register > after {
			mine = append(mine, live)
		}
	}
	l.mu.Unlock()
	full := len(regs) == limit
	last := ""
	if full {
		last = regs[len(regs)-1].Register
	}
	byReg := make(map[string]int, len(regs))
	for i, r := range regs {
		byReg[r.Register] = i
	}
	for _, live := range mine {
		i, ok := byReg[live.Register]
		switch {
		case ok && !live.Status.At.Before(regs[i].Status.At):
			regs[i] = live
		case !ok && (!full || live.Register < last):
			regs = append(regs, live)
		}
	}
	slices.SortFunc(regs, func(a, b store.Register) int { return strings.Compare(a.Register, b.Register) })
	return regs[:min(len(regs), limit)]
}

// entry is a register as the fleet endpoints show it.
func entry(reg store.Register) fleetEntry {
	e := fleetEntry{Store: reg.Store, Register: reg.Register, Online: reg.Status.Online, LastSeen: reg.LastSeen,
		OutboxDepth: reg.Status.OutboxDepth, DenylistSeq: reg.Status.DenylistSeq, DenylistEpoch: reg.Status.DenylistEpoch,
		AllowlistSeq: reg.Status.AllowlistSeq, Scanner: string(reg.Status.Links.Scanner), POS: string(reg.Status.Links.POS)}
	if rs := reg.Status.DenylistReset; rs != nil {
		e.DenylistReset = fmt.Sprintf("%s %s", rs.Why, rs.At.Format(time.RFC3339))
	}
	if p := reg.Status.Policy; p != nil {
		e.PolicyName, e.PolicyVersion = p.Name, p.Version
	}
	if rf := reg.Status.Refusal; rf != nil {
		e.Refusal = fmt.Sprintf("%s %s: %s", rf.Subject, rf.Reason, rf.Detail)
		e.RefusalReason, e.RefusalVersion = rf.Reason, rf.Version
	}
	return e
}

// rolloutView is GET /v1/policy/rollout: the policy the rollout is of
// (nil when no policy is retained and no version was asked), every
// retained policy, and the rollout.
type rolloutView struct {
	Policy  *pushedPolicy  `json:"policy"`
	Pushed  []pushedPolicy `json:"pushed"`
	Rollout *store.Rollout `json:"rollout"`
}

func (s *Service) policyRollout(w http.ResponseWriter, r *http.Request) {
	scope := r.FormValue("scope")
	if scope != "" {
		if err := wire.ValidateScope(scope); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
	}
	_, limit, err := page(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	out := rolloutView{Pushed: s.live.policies.list()}
	// The policy of the scope asked, else the latest pushed.
	for i, pp := range out.Pushed {
		if (scope == "" || pp.Scope == scope) && pp.Error == "" {
			out.Policy = &out.Pushed[i]
			break
		}
	}
	var v int64
	if out.Policy != nil {
		scope, v = out.Policy.Scope, out.Policy.Version
	}
	if s := r.FormValue("version"); s != "" {
		if v, err = strconv.ParseInt(s, 10, 64); err != nil || v <= 0 {
			httpError(w, http.StatusBadRequest, errors.New("version: want a positive integer"))
			return
		}
		if out.Policy != nil && out.Policy.Version != v {
			out.Policy = nil
		}
	}
	if v == 0 {
		writeJSON(w, out)
		return
	}
	ro, err := s.cfg.Store.Rollout(r.Context(), cmp.Or(scope, wire.ScopeAll), v, limit)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	out.Rollout = &ro
	writeJSON(w, out)
}

func (s *Service) fleetStream(w http.ResponseWriter, r *http.Request) {
	ch, cancel := s.live.hub.Subscribe()
	defer cancel()
	first, err := sse.JSON("policies", s.live.policies.list())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	if err := sse.Stream(w, r, []sse.Message{first}, ch, streamHeartbeat, s.live.done); err != nil {
		s.log.Debug("fleet stream ended", "err", err)
	}
}

// stored tells the streams a register's status is stored: a page that
// reads again now sees it.
func (l *liveFleet) stored(st wire.Status, at time.Time) {
	l.publish("status", entry(store.Register{Store: st.Store, Register: st.Register, Status: st, LastSeen: at}))
}

// policyChanged records the bundle retained on scope's policy topic and
// tells the streams when it is a new one.
func (l *liveFleet) policyChanged(scope string, payload []byte, now time.Time) {
	if l.policies.observe(scope, payload, now, l.log) {
		l.publish("policies", l.policies.list())
	}
}

func (l *liveFleet) publish(event string, v any) {
	if l.hub.Len() == 0 {
		return
	}
	m, err := sse.JSON(event, v)
	if err != nil {
		l.log.Error("fleet stream", "err", err)
		return
	}
	if n := l.hub.Publish(m); n > 0 {
		l.log.Warn("fleet streams cut off for falling behind", "streams", n)
	}
}

// stop ends the streams.
func (l *liveFleet) stop() { l.stopOnce.Do(func() { close(l.done) }) }
