package hq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/cases"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/wire"
)

// maxAllowlistBody bounds POST /v1/allowlist: accounts, a reason, an
// expiry.
const maxAllowlistBody = 1 << 20

// listRoutes are the console's Lists page's endpoints: each list's entries
// with who added them, when, why and until when, a page at a time; the
// allowlist's changes by hand; and the audit trail of both lists.
func (s *Service) listRoutes() []Route {
	return []Route{
		{"GET /v1/denylist", apiauth.Read, s.listGet(event.DenylistChanged, s.cfg.Store.DenylistEntries)},
		{"GET /v1/allowlist", apiauth.Read, s.listGet(store.AllowlistChanged, s.cfg.Store.AllowlistEntries)},
		{"POST /v1/allowlist", apiauth.Analyst, httpserve.JSONOnly(http.HandlerFunc(s.allowlistPost))},
		{"GET /v1/lists/audit", apiauth.Read, http.HandlerFunc(s.listAudit)},
	}
}

// listEntry is one account in GET /v1/denylist and GET /v1/allowlist:
// the change that (last) added it — when, by whom, why (as they said) and
// the list version — and the entry's detail as registers hold it.
type listEntry struct {
	Account string    `json:"account"`
	Added   time.Time `json:"added,omitzero"`
	By      string    `json:"by,omitempty"`
	Why     string    `json:"why,omitempty"`
	Seq     uint64    `json:"seq,omitempty"`
	// ExpiresAt is when registers stop honouring the entry (allowlist
	// entries always have one; denylist entries by hand may not).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Expired   bool      `json:"expired,omitempty"` // not yet swept
	Rule      string    `json:"rule,omitempty"`    // the chain rule or "case:<id>" that added it
	Reason    string    `json:"reason,omitempty"`  // the entry's reason as registers show it
	Events    []string  `json:"events,omitempty"`  // the events that caused it
}

// pageLimit reads a request's limit: 1 to max, def when absent.
func pageLimit(r *http.Request, def, max int) (int, error) {
	v := r.FormValue("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > max {
		return 0, fmt.Errorf("limit: want an integer from 1 to %d", max)
	}
	return n, nil
}

// listGet serves a page of a list's entries: account (a prefix), after
// (the last account of the previous page), limit; next is the after of
// the following page, "" at the end.
func (s *Service) listGet(list event.Type, entries func(context.Context, store.ListQuery) ([]store.ListEntry, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := store.ListQuery{Prefix: r.FormValue("account"), After: r.FormValue("after")}
		var err error
		if q.Limit, err = pageLimit(r, store.DefaultListLimit, store.MaxListLimit); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		v, err := s.cfg.Store.ListVersion(r.Context(), list)
		if err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		es, err := entries(r.Context(), q)
		if err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		now := s.cfg.Now()
		out := make([]listEntry, len(es))
		for i, e := range es {
			d := e.Detail
			out[i] = listEntry{Account: e.Account, Added: e.Added, By: e.By, Why: e.Reason, Seq: e.Seq,
				ExpiresAt: d.ExpiresAt, Expired: !d.ExpiresAt.IsZero() && !now.Before(d.ExpiresAt),
				Rule: d.Rule, Reason: d.Reason, Events: d.Events}
		}
		next := ""
		if len(es) == q.Limit {
			next = es[len(es)-1].Account
		}
		writeJSON(w, map[string]any{"epoch": v.Epoch, "seq": v.Seq, "signing": s.cfg.Signer != nil, "entries": out, "next": next})
	}
}

// listChangeBody is a change to a list by hand: POST /v1/denylist and
// POST /v1/allowlist.
type listChangeBody struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
	Reason string   `json:"reason"` // required: why, recorded with the change
	// Expires (RFC 3339), or the endpoint's duration from now, is when
	// the added entries end: optional on the denylist, required on the
	// allowlist.
	Expires time.Time `json:"expires,omitzero"`
}

type allowlistRequest struct {
	listChangeBody
	AllowFor string `json:"allowFor,omitempty"`
}

// decodeBody reads a request body of at most limit bytes strictly into v;
// on a bad one it answers 400 and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return false
	}
	return true
}

// readListChange decodes a list change into req, whose body is b, and
// returns its expiry: b.Expires, or *dur (the field durField) from now;
// on a bad request it answers 400 and returns false.
func (s *Service) readListChange(w http.ResponseWriter, r *http.Request, limit int64, req any, b *listChangeBody, dur *string, durField string) (time.Time, bool) {
	if !decodeBody(w, r, limit, req) {
		return time.Time{}, false
	}
	if len(b.Add)+len(b.Remove) == 0 {
		httpError(w, http.StatusBadRequest, errors.New("body: nothing to add or remove"))
		return time.Time{}, false
	}
	expires, err := s.expiry(b.Expires, *dur, durField)
	if err == nil && !expires.IsZero() && !expires.After(s.cfg.Now()) {
		err = errors.New("expires: in the past")
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return time.Time{}, false
	}
	return expires, true
}

// expiry reads an expiry given as a time or as a duration from now (at
// most one; neither: zero), field naming the duration.
func (s *Service) expiry(at time.Time, dur, field string) (time.Time, error) {
	if dur == "" {
		return at, nil
	}
	d, err := time.ParseDuration(dur)
	if err != nil || d <= 0 || !at.IsZero() {
		return time.Time{}, fmt.Errorf("%s: want one positive Go duration (720h), and not with expires", field)
	}
	return s.cfg.Now().Add(d), nil
}

// manualDetails gives each added account the detail registers hold: its
// expiry and the reason people gave.
func manualDetails(add []string, expires time.Time, reason string) map[string]wire.ListDetail {
	if expires.IsZero() || len(add) == 0 {
		return nil
	}
	details := make(map[string]wire.ListDetail, len(add))
	for _, a := range add {
		details[a] = wire.ListDetail{ExpiresAt: expires.UTC(), Reason: cases.Clip(reason, wire.MaxTextLen)}
	}
	return details
}

func (s *Service) allowlistPost(w http.ResponseWriter, r *http.Request) {
	var req allowlistRequest
	expires, ok := s.readListChange(w, r, maxAllowlistBody, &req, &req.listChangeBody, &req.AllowFor, "allowFor")
	if !ok {
		return
	}
	if len(req.Add) > 0 && expires.IsZero() {
		httpError(w, http.StatusBadRequest, errors.New("expires or allowFor: required with add (an allow entry always ends)"))
		return
	}
	makeListChange(w, r, &req.listChangeBody, expires, s.AllowlistChange)
}

// makeListChange makes the change b asks for, until expires, through
// change, as the request's caller, and answers.
func makeListChange(w http.ResponseWriter, r *http.Request, b *listChangeBody, expires time.Time, change func(context.Context, store.ListChange) (uint64, error)) {
	who, ok := caller(w, r)
	if !ok {
		return
	}
	seq, err := change(r.Context(), store.ListChange{Add: b.Add, Remove: b.Remove, By: who, Reason: b.Reason,
		Details: manualDetails(b.Add, expires, b.Reason)})
	listAnswer(w, seq, err)
}

// listAnswer answers a list change: its seq, or what went wrong.
func listAnswer(w http.ResponseWriter, seq uint64, err error) {
	switch {
	case errors.Is(err, ErrNoSigner):
		httpError(w, http.StatusServiceUnavailable, err)
	case err != nil && seq == 0:
		httpError(w, http.StatusBadRequest, err)
	case err != nil:
		// Stored but not (fully) published: say so, with the seq.
		w.WriteHeader(http.StatusAccepted)
		writeJSON(w, map[string]any{"seq": seq, "warning": err.Error()})
	default:
		writeJSON(w, map[string]any{"seq": seq})
	}
}

// listChange is one change in GET /v1/lists/audit.
type listChange struct {
	List   string    `json:"list"` // denylist | allowlist
	ID     string    `json:"id"`   // the record's event id
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	Seq    uint64    `json:"seq"`
	Add    []string  `json:"add,omitempty"`
	Remove []string  `json:"remove,omitempty"`
}

// changeOf is the change ev (one of store.ListChangeTypes) records.
func changeOf(ev event.Event) (listChange, bool) {
	d := store.ChangeInfo(ev)
	if d == nil {
		return listChange{}, false
	}
	return listChange{List: string(ev.Type), ID: ev.ID, At: ev.At, By: d.By, Reason: d.Reason, Seq: d.Seq, Add: d.Add, Remove: d.Remove}, true
}

// listAudit serves the lists' changes newest first: list (denylist or
// allowlist; both when absent), account (changes naming it), cursor (the
// next of the previous page), limit.
func (s *Service) listAudit(w http.ResponseWriter, r *http.Request) {
	q := store.AuditQuery{Type: event.Type(r.FormValue("list")), Account: r.FormValue("account")}
	switch q.Type {
	case "", event.DenylistChanged, store.AllowlistChanged:
	default:
		httpError(w, http.StatusBadRequest, fmt.Errorf("list: %q is not denylist or allowlist", q.Type))
		return
	}
	var err error
	if q.Before, err = store.ParseCursor(r.FormValue("cursor")); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if q.Limit, err = pageLimit(r, store.DefaultListLimit, store.MaxListLimit); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	evs, err := s.cfg.Store.ListChanges(r.Context(), q)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]listChange, 0, len(evs))
	for _, ev := range evs {
		if c, ok := changeOf(ev); ok {
			out = append(out, c)
		}
	}
	next := ""
	if len(evs) == q.Limit {
		next = store.CursorOf(evs[len(evs)-1]).String()
	}
	writeJSON(w, map[string]any{"changes": out, "next": next})
}
