package hq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/console"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
)

// maxDenylistBody bounds POST /v1/denylist, the API's largest request.
const maxDenylistBody = 4 << 20

// exportWait bounds writing one page of an export to a slow reader.
const exportWait = 30 * time.Second

// APILimits are the limits to serve Handler with (httpserve.Server): the
// defaults, with room for a denylist upload.
func APILimits() httpserve.Limits {
	return httpserve.Limits{MaxBodyBytes: maxDenylistBody}
}

// Handler serves HQ's JSON API and the console (hq/console). Every
// endpoint but /healthz needs a caller authenticated by a token or
// certificate of cfg.Auth or a console session of cfg.Users (when either
// is set) with the role it names; extra
// handlers (metrics) are served with the read role. POST bodies must be
// application/json (415), and requests naming another host than
// Config.APIListen's, localhost or Config.APIHosts (421) or coming from
// another origin (403) are refused, so a web page cannot change the
// denylist or, by DNS rebinding, read the events.
func (s *Service) Handler(extra ...Route) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	console.New(console.Config{Auth: s.auth, Log: s.log}).Register(mux)
	routes := []Route{
		{"GET /v1/fleet", apiauth.Read, http.HandlerFunc(s.fleet)},
		// Each alert with its state (open, approved, rejected, timed_out,
		// denied) and, once resolved, its resolution: who, how and when.
		{"GET /v1/alerts", apiauth.Read, list(s, s.alerts, event.Alert)},
		{"GET /v1/events", apiauth.Read, list(s, s.cfg.Store.Events)},
		{"POST /v1/denylist", apiauth.Analyst, httpserve.JSONOnly(http.HandlerFunc(s.denylistPost))},
		{"GET /v1/denylist/status", apiauth.Read, http.HandlerFunc(s.denylistStatus)},
		// The chain rules in force, each with how often it fired.
		{"GET /v1/chain/rules", apiauth.Read, http.HandlerFunc(s.chainRules)},
	}
	routes = append(routes, s.caseRoutes()...)   // cases_http.go
	routes = append(routes, s.policyRoutes()...) // policies_http.go
	routes = append(routes, s.alertRoutes()...)  // alerts_http.go
	routes = append(routes, s.listRoutes()...)   // lists_http.go
	routes = append(routes, s.fleetRoutes()...)  // fleet_http.go
	for _, rt := range append(routes, extra...) {
		mux.Handle(rt.Pattern, s.auth.Require(rt.Role, rt.Handler))
	}
	return s.Guard(mux)
}

// Guard applies the API's Host and Origin checks to h.
func (s *Service) Guard(h http.Handler) http.Handler {
	return httpserve.Guard(h, httpserve.Hosts{Listen: s.cfg.APIListen, Names: s.cfg.APIHosts, Setting: "--allow-host"})
}

// Route is one endpoint of the API and the role it needs.
type Route struct {
	Pattern string // http.ServeMux pattern
	Role    apiauth.Role
	Handler http.Handler
}

// fleetEntry is one register in GET /v1/fleet.
type fleetEntry struct {
	Store         string    `json:"store"`
	Register      string    `json:"register"`
	Online        bool      `json:"online"`
	LastSeen      time.Time `json:"lastSeen"`
	PolicyName    string    `json:"policyName,omitempty"`
	PolicyVersion int64     `json:"policyVersion,omitempty"`
	OutboxDepth   int       `json:"outboxDepth"`
	DenylistSeq   uint64    `json:"denylistSeq"`
	DenylistEpoch string    `json:"denylistEpoch,omitempty"`
	// DenylistReset says when and why the register last replaced its list
	// across epochs or backwards ("epoch 2026-11-29T10:00:00Z").
	DenylistReset string `json:"denylistReset,omitempty"`
	AllowlistSeq  uint64 `json:"allowlistSeq,omitempty"`
	Refusal       string `json:"refusal,omitempty"`
	// RefusalReason and RefusalVersion are the last refusal's reason code
	// and the version or seq it refused, for the console.
	RefusalReason  string `json:"refusalReason,omitempty"`
	RefusalVersion int64  `json:"refusalVersion,omitempty"`
	Scanner        string `json:"scanner,omitempty"` // the scanner link: up, down, none
	POS            string `json:"pos,omitempty"`     // the POS link
}

func (s *Service) fleet(w http.ResponseWriter, r *http.Request) {
	if storeID := r.FormValue("store"); storeID != "" {
		s.fleetOf(w, r, storeID) // fleet_http.go
		return
	}
	s.live.sync(r.Context(), s.client, s.receive) // fleet.go: agree with what push saw
	regs, err := s.cfg.Store.Fleet(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	regs = s.live.overlay(regs)
	out := make([]fleetEntry, 0, len(regs))
	for _, reg := range regs {
		out = append(out, entry(reg)) // fleet_http.go
	}
	writeJSON(w, out)
}

// alertView is an alert as GET /v1/alerts returns it: the stored alert and
// its fired rules' reasons as people read them, in Japanese and English,
// from the same templates as the store display and the POS.
type alertView struct {
	store.Alert
	Text *alertText `json:"text,omitempty"`
	// MaskedAccount is the paying account as the store display shows it
	// ("…a1b2"), for pages that need not show more; Amount is the cart's
	// total in yen.
	MaskedAccount string `json:"maskedAccount,omitempty"`
	Amount        int64  `json:"amount,omitempty"`
}

// alertText is one sentence per fired rule, in decision order, shadow
// rules marked.
type alertText struct {
	JA []string `json:"ja"`
	EN []string `json:"en"`
}

func (s *Service) alerts(ctx context.Context, q store.Query) ([]alertView, error) {
	alerts, err := s.cfg.Store.Alerts(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]alertView, len(alerts))
	for i, a := range alerts {
		out[i] = newAlertView(a) // alerts_http.go
	}
	return out, nil
}

// query reads the filters of /v1/events and /v1/alerts: store, register,
// account, since and until (RFC 3339; until exclusive), limit, type
// (comma-separated), rule, outcome; order=desc lists newest first. The
// cursor of a next page is the last item's time and id: since=AT&after=ID
// oldest first, until=AT&before=ID newest first.
func query(r *http.Request) (store.Query, error) {
	q := store.Query{Store: r.FormValue("store"), Register: r.FormValue("register"), Account: r.FormValue("account"),
		Rule: r.FormValue("rule"), Outcome: r.FormValue("outcome"), After: r.FormValue("after"), Before: r.FormValue("before")}
	if err := queryRange(r, &q); err != nil { // alerts_http.go
		return q, err
	}
	if v := r.FormValue("limit"); v != "" {
		if _, err := fmt.Sscan(v, &q.Limit); err != nil || q.Limit <= 0 {
			return q, errors.New("limit: want a positive integer")
		}
	}
	for _, t := range strings.Split(r.FormValue("type"), ",") {
		if t != "" {
			q.Types = append(q.Types, event.Type(t))
		}
	}
	return q, nil
}

// list serves what fetch finds for the request's filters (see query) as a
// JSON array; types, when given, replace the request's. format=jsonl
// streams the bare events one per line instead, the format `posguard
// policy test --events` reads.
func list[T any](s *Service, fetch func(context.Context, store.Query) ([]T, error), types ...event.Type) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := query(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		if types != nil {
			q.Types = types
		}
		if r.FormValue("format") == "jsonl" {
			s.export(w, r, q)
			return
		}
		out, err := fetch(r.Context(), q)
		writeList(w, out, err) // alerts_http.go
	}
}

// export streams every matching event as JSON lines, the input of
// `posguard policy test`, page by page in (at, id) order so an export of
// millions of events neither holds them all in memory nor drops or repeats
// events that share a timestamp. limit, when given, bounds the total.
func (s *Service) export(w http.ResponseWriter, r *http.Request, q store.Query) {
	total := q.Limit
	w.Header().Set("Content-Type", "application/jsonl")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	sent := 0
	for {
		// An export may outlast the server's write timeout; each page
		// gets its own.
		httpserve.Extend(w, exportWait)
		q.Limit = store.DefaultLimit
		if total > 0 {
			q.Limit = min(q.Limit, total-sent)
		}
		evs, err := s.cfg.Store.Events(r.Context(), q)
		if err != nil {
			if sent == 0 {
				httpError(w, http.StatusInternalServerError, err)
			} else {
				// Headers are gone: end the stream without a final newline
				// so the reader sees a truncated last line, not a clean end.
				s.log.Error("export cut short", "sent", sent, "err", err)
				io.WriteString(w, `{"error":`)
			}
			return
		}
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return // the client went away
			}
		}
		sent += len(evs)
		if len(evs) < q.Limit || (total > 0 && sent >= total) {
			return
		}
		last := evs[len(evs)-1]
		q.Since, q.After = last.At, last.ID
	}
}

type denylistRequest struct {
	listChangeBody // lists_http.go
	// DenyFor, a Go duration from now, is Expires another way.
	DenyFor string `json:"denyFor,omitempty"`
}

func (s *Service) denylistPost(w http.ResponseWriter, r *http.Request) {
	var req denylistRequest
	expires, ok := s.readListChange(w, r, maxDenylistBody, &req, &req.listChangeBody, &req.DenyFor, "denyFor")
	if !ok {
		return
	}
	makeListChange(w, r, &req.listChangeBody, expires, s.DenylistChange) // lists_http.go
}

func (s *Service) denylistStatus(w http.ResponseWriter, r *http.Request) {
	v, accounts, err := s.cfg.Store.Denylist(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, map[string]any{"epoch": v.Epoch, "seq": v.Seq, "accounts": len(accounts), "signing": s.cfg.Signer != nil})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // reasons read "tobacco cartons 3 > limit 2"
	enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) { httpserve.Error(w, code, err.Error()) }
