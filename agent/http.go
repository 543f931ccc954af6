package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/ascii"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// Request bounds of the local API.
const (
	maxBody     = 64 << 10
	maxLines    = policy.MaxLines // the cart policy expr rules are costed for
	maxQuantity = policy.MaxLineQuantity
)

// Handler is the local API:
//
//	GET  /healthz               ok once the state file is open
//	GET  /metrics               Prometheus metrics
//	GET  /v1/status             policy, links, outbox, HQ contact
//	POST /v1/decide             {"lines":[{"jan","quantity"}],"token":"..."} → Result
//	                            optional header Idempotency-Key: a retry with the same
//	                            key and body gets the first answer (Idempotent-Replayed: true)
//	GET  /v1/reviews            open reviews
//	GET  /v1/reviews/{id}       one review, resolved or not
//	POST /v1/reviews/{id}       {"action":"approve|reject","pin":"1234","by":"name"}
//	GET  /v1/events?after=SEQ   recent decisions (this process's last 1000)
//	GET  /v1/outbox             outbox depth and oldest event time
//
// POST bodies must be sent as application/json (415 otherwise); requests
// naming another host (421) or coming from another origin (403) are
// refused, so web pages open on the register cannot use the API.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, a.Status()) })
	mux.Handle("POST /v1/decide", httpserve.JSONOnly(http.HandlerFunc(a.httpDecide)))
	mux.HandleFunc("GET /v1/reviews", a.httpReviews)
	mux.HandleFunc("GET /v1/reviews/{id}", a.httpReview)
	mux.Handle("POST /v1/reviews/{id}", httpserve.JSONOnly(http.HandlerFunc(a.httpResolve)))
	mux.HandleFunc("GET /v1/events", a.httpEvents)
	mux.HandleFunc("GET /v1/outbox", func(w http.ResponseWriter, _ *http.Request) {
		depth, oldest := a.st.OutboxStats()
		writeJSON(w, http.StatusOK, OutboxInfo{Depth: depth, Oldest: oldest, Dropped: a.st.Dropped()})
	})
	return httpserve.Guard(mux, httpserve.Hosts{Listen: a.base.HTTP.Listen, Names: a.base.HTTP.AllowedHosts, Setting: "http.allowedHosts"})
}

// apiError is every error body of the API.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // reasons read "tobacco cartons 3 > limit 2"
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

// decodeBody reads one JSON object strictly: unknown fields, trailing
// data and oversize bodies are refused with the reason.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("body larger than %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body: trailing data after the JSON object")
	}
	return nil
}

// DecideRequest is the body of POST /v1/decide.
type DecideRequest struct {
	Lines []CartLine `json:"lines"`
	Token string     `json:"token"`
}

// ParseDecideRequest decodes and checks a decide body.
func ParseDecideRequest(body []byte) (DecideRequest, error) {
	var q DecideRequest
	if len(body) > maxBody {
		return q, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return DecideRequest{}, fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return DecideRequest{}, errors.New("body: trailing data after the JSON object")
	}
	return q, q.Validate()
}

// Validate checks the cart and that there is a token. A token longer than
// token.MaxTextLen is not refused here: it is decided (deny, invalid
// too_long) so the attempt reaches HQ like any other refused token.
func (q DecideRequest) Validate() error {
	if q.Token == "" {
		return errors.New("token: required")
	}
	if len(q.Lines) > maxLines {
		return fmt.Errorf("lines: %d lines, limit %d", len(q.Lines), maxLines)
	}
	for i, l := range q.Lines {
		if l.JAN == "" || len(l.JAN) > 48 {
			return fmt.Errorf("lines[%d].jan: must be 1 to 48 characters", i)
		}
		if err := ascii.Visible("jan", l.JAN); err != nil {
			return fmt.Errorf("lines[%d].%w", i, err)
		}
		if l.Quantity < 1 || l.Quantity > maxQuantity {
			return fmt.Errorf("lines[%d].quantity: must be 1 to %d, got %d", i, maxQuantity, l.Quantity)
		}
	}
	return nil
}

func (a *Agent) httpDecide(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: %v", err)
		return
	}
	q, err := ParseDecideRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	sale := Sale{Lines: q.Lines, Token: []byte(q.Token)}
	if key := r.Header.Get("Idempotency-Key"); key != "" || len(r.Header.Values("Idempotency-Key")) > 0 {
		if err := checkIdempotencyKey(key); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		sale.IdempotencyKey, sale.Fingerprint = key, q.fingerprint()
	}
	res, err := a.Decide(r.Context(), sale)
	switch {
	case errors.Is(err, ErrIdempotencyMismatch):
		writeError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	case err != nil:
		if res.Outcome == "" {
			res = Result{Outcome: policy.Deny, Error: "decision failed; payment refused: " + err.Error()}
		}
		// The body still says deny, so a caller that only reads the
		// outcome refuses the payment.
		writeJSON(w, http.StatusServiceUnavailable, res)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, res)
}

// checkIdempotencyKey accepts 1 to state.MaxIdempotencyKey visible ASCII
// characters: the key is stored and logged.
func checkIdempotencyKey(key string) error {
	if key == "" || len(key) > state.MaxIdempotencyKey {
		return fmt.Errorf("Idempotency-Key: must be 1 to %d characters, got %d", state.MaxIdempotencyKey, len(key))
	}
	return ascii.Visible("Idempotency-Key", key)
}

// fingerprint identifies a decide request for its idempotency key: the
// hash of its canonical JSON, so a retry that reorders whitespace or keys
// still matches while another cart or token does not.
func (q DecideRequest) fingerprint() string {
	b, err := json.Marshal(q)
	if err != nil {
		// A parsed request always encodes; a distinct value refuses
		// any retry rather than matching a wrong one.
		return "unencodable"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ReviewInfo is a review as the API shows it; the held token is not shown.
type ReviewInfo struct {
	ID         string                `json:"id"`
	SaleID     string                `json:"saleId"`
	Created    time.Time             `json:"created"`
	Deadline   time.Time             `json:"deadline"`
	Resolution *event.ResolutionInfo `json:"resolution,omitempty"`
}

func reviewInfo(r state.Review) ReviewInfo {
	return ReviewInfo{ID: r.ID, SaleID: r.SaleID, Created: r.Created, Deadline: r.Deadline, Resolution: r.Resolution}
}

func (a *Agent) httpReviews(w http.ResponseWriter, _ *http.Request) {
	open, err := a.st.OpenReviews()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := make([]ReviewInfo, 0, len(open))
	for _, r := range open {
		out = append(out, reviewInfo(r))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) httpReview(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rv, ok, err := a.st.Review(id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "%v", err)
	case !ok:
		writeError(w, http.StatusNotFound, "no review %q", id)
	default:
		writeJSON(w, http.StatusOK, reviewInfo(rv))
	}
}

// ResolveRequest is the body of POST /v1/reviews/{id}.
type ResolveRequest struct {
	Action string `json:"action"`
	PIN    string `json:"pin"`
	By     string `json:"by"`
}

func (a *Agent) httpResolve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var q ResolveRequest
	if err := decodeBody(r, &q); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if q.By == "" {
		q.By = "local"
	}
	if err := checkBy(q.By); err != nil {
		writeError(w, http.StatusBadRequest, "by: %v", err)
		return
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	rv, err := a.Resolve(r.Context(), id, q.Action, q.PIN, q.By, "http:"+client)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, reviewInfo(rv))
	case errors.Is(err, ErrBadAction):
		writeError(w, http.StatusBadRequest, "action: %v", err)
	case errors.Is(err, ErrRateLimited):
		w.Header().Set("Retry-After", strconv.Itoa(int(pinRetryAfter/time.Second)))
		writeError(w, http.StatusTooManyRequests, "%v", err)
	case errors.Is(err, ErrBadPIN), errors.Is(err, ErrNoPINs):
		writeError(w, http.StatusForbidden, "%v", err)
	case errors.Is(err, state.ErrNoReview):
		writeError(w, http.StatusNotFound, "no review %q", id)
	case errors.Is(err, state.ErrAlreadyResolved):
		writeError(w, http.StatusConflict, "%v", err)
	default:
		writeError(w, http.StatusInternalServerError, "%v", err)
	}
}

// checkBy keeps the resolver's name printable and short: it travels in
// events to HQ and the store displays.
func checkBy(by string) error {
	if len(by) > wire.MaxTextLen {
		return fmt.Errorf("longer than %d bytes", wire.MaxTextLen)
	}
	if !utf8.ValidString(by) {
		return errors.New("not valid UTF-8")
	}
	for i, r := range by {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %U at %d", r, i)
		}
	}
	return nil
}

func (a *Agent) httpEvents(w http.ResponseWriter, r *http.Request) {
	var after uint64
	if s := r.URL.Query().Get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "after: %q is not a sequence number", s)
			return
		}
		after = v
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 1000 {
			writeError(w, http.StatusBadRequest, "limit: %q is not 1 to 1000", s)
			return
		}
		limit = v
	}
	writeJSON(w, http.StatusOK, a.Events(after, limit))
}

// OutboxInfo is GET /v1/outbox.
type OutboxInfo struct {
	Depth   int       `json:"depth"`
	Oldest  time.Time `json:"oldest,omitzero"`
	Dropped uint64    `json:"dropped"`
}

// Status is GET /v1/status.
type Status struct {
	Store       string                `json:"store"`
	Register    string                `json:"register"`
	Version     string                `json:"version"`
	Policy      *StatusPolicy         `json:"policy"`
	FailMode    bool                  `json:"failMode"` // no valid policy: failMode decides
	Links       wire.Links            `json:"links"`
	Scanner     *StatusScanner        `json:"scanner,omitempty"`
	HQ          StatusHQ              `json:"hq"`
	Outbox      OutboxInfo            `json:"outbox"`
	OpenReviews int                   `json:"openReviews"`
	Last        *wire.DecisionSummary `json:"lastDecision,omitempty"`
	Started     time.Time             `json:"started"`
}

// StatusPolicy names the policy in force.
type StatusPolicy struct {
	Name      string    `json:"name"`
	Version   int64     `json:"version"`
	ExpiresAt time.Time `json:"expiresAt"`
	Source    string    `json:"source"` // signed | bootstrap
	Expired   bool      `json:"expired"`
}

// StatusScanner is the scanner link's counters (present when a scanner
// is configured).
type StatusScanner struct {
	// PartialsDropped counts multi-packet SSI scans thrown away incomplete
	// since the agent started, by reason: timeout, code_type, new_message,
	// too_long, closed.
	PartialsDropped map[string]int64 `json:"partialsDropped"`
}

// StatusHQ is the HQ link.
type StatusHQ struct {
	Configured  bool          `json:"configured"`
	Connected   bool          `json:"connected"`
	LastContact time.Time     `json:"lastContact,omitzero"`
	Offline     bool          `json:"offline"` // offline limits apply
	Refusal     *wire.Refusal `json:"refusal,omitempty"`
	// Peers is the store facts link, which travels over the same broker.
	Peers *wire.Peers `json:"peers,omitempty"`
}

// Status reports the agent's state.
func (a *Agent) Status() Status {
	now := a.now()
	act := a.pol.Load()
	valid, _ := act.valid(now, a.base.Store)
	s := Status{Store: a.base.Store, Register: a.base.Register, Version: a.version(), FailMode: !valid,
		Links: a.links(), Last: a.last.Load(), Started: a.start}
	if p := act.p; p != nil {
		s.Policy = &StatusPolicy{Name: p.Metadata.Name, Version: p.Metadata.Version, ExpiresAt: p.Metadata.ExpiresAt,
			Source: act.source, Expired: p.Expired(now)}
	}
	if a.hq != nil {
		s.HQ = StatusHQ{Configured: true, Connected: a.hq.Connected(), LastContact: a.hq.LastContact(),
			Offline: a.offline(now), Refusal: a.hq.Refusal(), Peers: a.hq.Peers()}
	}
	if a.scn != nil {
		s.Scanner = &StatusScanner{PartialsDropped: make(map[string]int64)}
		for r, n := range a.scn.Drops() {
			s.Scanner.PartialsDropped[string(r)] = n
		}
	}
	s.Outbox.Depth, s.Outbox.Oldest = a.st.OutboxStats()
	s.Outbox.Dropped = a.st.Dropped()
	s.OpenReviews = len(a.reviews.due(time.Unix(1<<62, 0)))
	return s
}

func (a *Agent) links() wire.Links {
	l := wire.Links{Scanner: wire.LinkNone, POS: wire.LinkNone}
	if a.scn != nil {
		l.Scanner = wire.LinkDown
		if a.scn.Up() {
			l.Scanner = wire.LinkUp
		}
	}
	if a.pos != nil {
		l.POS = wire.LinkDown
		if a.pos.Up() {
			l.POS = wire.LinkUp
		}
	}
	return l
}

// wireStatus is the agent's part of the retained MQTT status.
func (a *Agent) wireStatus() wire.Status {
	st := wire.Status{Links: a.links(), LastDecision: a.last.Load()}
	if p := a.pol.Load().p; p != nil && p.Metadata.Version > 0 {
		st.Policy = &wire.PolicyInfo{Name: p.Metadata.Name, Version: p.Metadata.Version, ExpiresAt: p.Metadata.ExpiresAt,
			IssuedAt: p.Metadata.IssuedAt}
	}
	return st
}
