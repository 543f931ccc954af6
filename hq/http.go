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
	"github.com/posguard/posguard/policy/reason"
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
	routes = append(routes, s.caseRoutes()...) // cases_http.go
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
}

func (s *Service) fleet(w http.ResponseWriter, r *http.Request) {
	s.live.sync(r.Context(), s.client, s.receive) // fleet.go: agree with what push saw
	regs, err := s.cfg.Store.Fleet(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	regs = s.live.overlay(regs)
	out := make([]fleetEntry, 0, len(regs))
	for _, reg := range regs {
		e := fleetEntry{Store: reg.Store, Register: reg.Register, Online: reg.Status.Online, LastSeen: reg.LastSeen,
			OutboxDepth: reg.Status.OutboxDepth, DenylistSeq: reg.Status.DenylistSeq, DenylistEpoch: reg.Status.DenylistEpoch,
			AllowlistSeq: reg.Status.AllowlistSeq}
		if rs := reg.Status.DenylistReset; rs != nil {
			e.DenylistReset = fmt.Sprintf("%s %s", rs.Why, rs.At.Format(time.RFC3339))
		}
		if p := reg.Status.Policy; p != nil {
			e.PolicyName, e.PolicyVersion = p.Name, p.Version
		}
		if rf := reg.Status.Refusal; rf != nil {
			e.Refusal = fmt.Sprintf("%s %s: %s", rf.Subject, rf.Reason, rf.Detail)
		}
		out = append(out, e)
	}
	writeJSON(w, out)
}

// alertView is an alert as GET /v1/alerts returns it: the stored alert and
// its fired rules' reasons as people read them, in Japanese and English,
// from the same templates as the store display and the POS.
type alertView struct {
	store.Alert
	Text *alertText `json:"text,omitempty"`
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
		out[i].Alert = a
		if d := a.Decision; d != nil && len(d.Rules) > 0 {
			out[i].Text = &alertText{JA: reason.Decision(reason.Japanese, *d), EN: reason.Decision(reason.English, *d)}
		}
	}
	return out, nil
}

// query reads the filters of /v1/events and /v1/alerts: store, register,
// account, since (RFC 3339), limit, type (comma-separated).
func query(r *http.Request) (store.Query, error) {
	q := store.Query{Store: r.FormValue("store"), Register: r.FormValue("register"), Account: r.FormValue("account")}
	if v := r.FormValue("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return q, fmt.Errorf("since: want RFC 3339 time: %w", err)
		}
		q.Since = t
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
		if err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		if out == nil {
			out = []T{}
		}
		writeJSON(w, out)
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
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
	Reason string   `json:"reason"` // required: why, recorded with the change
}

func (s *Service) denylistPost(w http.ResponseWriter, r *http.Request) {
	var req denylistRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDenylistBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if len(req.Add)+len(req.Remove) == 0 {
		httpError(w, http.StatusBadRequest, errors.New("body: nothing to add or remove"))
		return
	}
	who, ok := apiauth.Caller(r)
	if !ok {
		httpError(w, http.StatusInternalServerError, errors.New("denylist change without an authenticated caller"))
		return
	}
	seq, err := s.DenylistChange(r.Context(), store.ListChange{Add: req.Add, Remove: req.Remove, By: who.String(), Reason: req.Reason})
	switch {
	case errors.Is(err, ErrNoSigner):
		httpError(w, http.StatusServiceUnavailable, err)
		return
	case err != nil && seq == 0:
		httpError(w, http.StatusBadRequest, err)
		return
	case err != nil:
		// Stored but not (fully) published: say so, with the seq.
		w.WriteHeader(http.StatusAccepted)
		writeJSON(w, map[string]any{"seq": seq, "warning": err.Error()})
		return
	}
	writeJSON(w, map[string]any{"seq": seq})
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
