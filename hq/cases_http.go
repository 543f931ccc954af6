package hq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/cases"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
)

// maxCaseBody bounds a case request: a note and a few fields.
const maxCaseBody = 16 << 10

// Cases is the instance's case service, the CaseOpener HQ's chain rules
// call.
func (s *Service) Cases() *cases.Service { return s.cases }

// Signing reports whether this HQ can sign list changes (cases.Lists).
func (s *Service) Signing() bool { return s.cfg.Signer != nil }

func (s *Service) caseRoutes() []Route {
	post := func(h http.HandlerFunc) http.Handler { return httpserve.JSONOnly(h) }
	return []Route{
		{"GET /v1/cases", apiauth.Read, http.HandlerFunc(s.caseList)},
		{"GET /v1/cases/labels", apiauth.Read, http.HandlerFunc(s.caseLabels)},
		{"GET /v1/cases/{id}", apiauth.Read, http.HandlerFunc(s.caseGet)},
		{"POST /v1/cases", apiauth.Analyst, post(s.caseOpen)},
		{"POST /v1/cases/{id}/confirm", apiauth.Analyst, post(s.caseMove(s.cases.Confirm))},
		{"POST /v1/cases/{id}/false-positive", apiauth.Analyst, post(s.caseFalsePositive)},
		{"POST /v1/cases/{id}/close", apiauth.Analyst, post(s.caseMove(s.cases.Close))},
		{"GET /v1/allowlist", apiauth.Read, http.HandlerFunc(s.allowlistGet)},
	}
}

// caseError answers err with the status that says what went wrong.
func caseError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, cases.ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, store.ErrCaseNotFound):
		code = http.StatusNotFound
	case errors.Is(err, cases.ErrIllegal), errors.Is(err, store.ErrCaseConflict):
		code = http.StatusConflict
	case errors.Is(err, cases.ErrNoSigner):
		code = http.StatusServiceUnavailable
	}
	httpError(w, code, err)
}

// decodeCase reads a case request body strictly into v.
func decodeCase(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCaseBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return false
	}
	return true
}

// caller is who makes the change: the authenticated principal, never a
// name the request gives itself.
func caller(w http.ResponseWriter, r *http.Request) (string, bool) {
	who, ok := apiauth.Caller(r)
	if !ok {
		httpError(w, http.StatusInternalServerError, errors.New("case change without an authenticated caller"))
		return "", false
	}
	return who.String(), true
}

func (s *Service) caseList(w http.ResponseWriter, r *http.Request) {
	q := store.CaseQuery{State: r.FormValue("state"), Store: r.FormValue("store"), Account: r.FormValue("account"), After: r.FormValue("after")}
	switch q.State {
	case "", store.CaseOpen, store.CaseConfirmedFraud, store.CaseFalsePositive, store.CaseClosed:
	default:
		httpError(w, http.StatusBadRequest, fmt.Errorf("state: %q is not open, confirmed_fraud, false_positive or closed", q.State))
		return
	}
	if v := r.FormValue("limit"); v != "" {
		if _, err := fmt.Sscan(v, &q.Limit); err != nil || q.Limit <= 0 || q.Limit > store.MaxCaseLimit {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit: want an integer from 1 to %d", store.MaxCaseLimit))
			return
		}
	}
	out, err := s.cases.Cases(r.Context(), q)
	if err != nil {
		caseError(w, err)
		return
	}
	writeJSON(w, out)
}

func (s *Service) caseGet(w http.ResponseWriter, r *http.Request) {
	d, err := s.cases.Case(r.Context(), r.PathValue("id"))
	if err != nil {
		caseError(w, err)
		return
	}
	writeJSON(w, d)
}

// caseLabels serves the labels as JSON lines, the input of backtests.
func (s *Service) caseLabels(w http.ResponseWriter, r *http.Request) {
	labels, err := s.cases.Labels(r.Context())
	if err != nil {
		caseError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, l := range labels {
		l.At = l.At.UTC().Truncate(time.Second)
		if err := enc.Encode(l); err != nil {
			return // the client went away
		}
	}
}

type caseOpenRequest struct {
	Account string `json:"account"`
	Store   string `json:"store"`
	Note    string `json:"note"`
}

func (s *Service) caseOpen(w http.ResponseWriter, r *http.Request) {
	var req caseOpenRequest
	if !decodeCase(w, r, &req) {
		return
	}
	who, ok := caller(w, r)
	if !ok {
		return
	}
	id, opened, err := s.cases.Open(r.Context(), req.Account, req.Store, who, req.Note)
	if err != nil {
		caseError(w, err)
		return
	}
	if opened {
		w.WriteHeader(http.StatusCreated)
	}
	writeJSON(w, map[string]any{"id": id, "opened": opened})
}

type caseNoteRequest struct {
	Note string `json:"note"`
}

type falsePositiveRequest struct {
	Note string `json:"note"`
	// Expires is when the allow entry ends (RFC 3339); AllowFor, a Go
	// duration, the same from now. At most one; neither: 30 days.
	Expires  time.Time `json:"expires,omitzero"`
	AllowFor string    `json:"allowFor,omitempty"`
	Store    string    `json:"store,omitempty"` // where the account was found legitimate
}

// caseMove serves a move whose body is a note: confirm and close.
func (s *Service) caseMove(move func(ctx context.Context, id, by, note string) (cases.Outcome, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req caseNoteRequest
		if !decodeCase(w, r, &req) {
			return
		}
		who, ok := caller(w, r)
		if !ok {
			return
		}
		out, err := move(r.Context(), r.PathValue("id"), who, req.Note)
		s.caseAnswer(w, out, err)
	}
}

func (s *Service) caseFalsePositive(w http.ResponseWriter, r *http.Request) {
	var req falsePositiveRequest
	if !decodeCase(w, r, &req) {
		return
	}
	who, ok := caller(w, r)
	if !ok {
		return
	}
	expires := req.Expires
	if req.AllowFor != "" {
		d, err := time.ParseDuration(req.AllowFor)
		if err != nil || !expires.IsZero() {
			httpError(w, http.StatusBadRequest, errors.New("allowFor: want one Go duration (720h), and not with expires"))
			return
		}
		expires = s.cfg.Now().Add(d)
	}
	out, err := s.cases.FalsePositive(r.Context(), r.PathValue("id"), who, req.Note, expires, req.Store)
	s.caseAnswer(w, out, err)
}

func (s *Service) caseAnswer(w http.ResponseWriter, out cases.Outcome, err error) {
	if err != nil {
		caseError(w, err)
		return
	}
	if out.Warning != "" {
		w.WriteHeader(http.StatusAccepted) // moved, list change stored, not all published
	}
	writeJSON(w, out)
}

// allowEntry is one account in GET /v1/allowlist.
type allowEntry struct {
	Account   string    `json:"account"`
	ExpiresAt time.Time `json:"expiresAt"`
	Rule      string    `json:"rule,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Expired   bool      `json:"expired,omitempty"` // not yet swept
}

func (s *Service) allowlistGet(w http.ResponseWriter, r *http.Request) {
	v, accounts, details, err := s.cfg.Store.Allowlist(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	now := s.cfg.Now()
	entries := make([]allowEntry, 0, len(accounts))
	for _, a := range accounts {
		d := details[a]
		entries = append(entries, allowEntry{Account: a, ExpiresAt: d.ExpiresAt, Rule: d.Rule, Reason: d.Reason, Expired: !now.Before(d.ExpiresAt)})
	}
	writeJSON(w, map[string]any{"epoch": v.Epoch, "seq": v.Seq, "entries": entries, "signing": s.cfg.Signer != nil})
}
