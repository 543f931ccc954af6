package display

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/posguard/posguard/display/auth"
	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/display/i18n"
	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/wire"
)

//go:embed web
var webFS embed.FS

// pages are parsed once; the templates are part of the binary, so a parse
// error is a build mistake caught by every test.
var pages = template.Must(template.ParseFS(webFS, "web/*.html"))

// CSRFHeader carries the session's CSRF token on POST /api/resolve.
const CSRFHeader = "X-CSRF-Token"

// Handler is the display's HTTP interface:
//
//	GET  /             the page
//	GET  /events       the SSE stream (snapshot, then alert/register/broker updates)
//	POST /api/resolve  {"register","reviewId","action","pin"} with X-CSRF-Token
//	GET  /login, POST /login, POST /logout   when a password is configured
//	GET  /static/…     the page's CSS and JS
func (s *Server) Handler() http.Handler {
	static, _ := fs.Sub(webFS, "web/static")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("POST /api/resolve", s.handleResolve)
	mux.HandleFunc("GET /login", s.handleLoginPage)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	return s.guard(mux)
}

// guard adds the headers every response needs, a strict content security
// policy (no inline script, nothing from elsewhere) among them, and refuses
// requests naming another host (DNS rebinding) or coming from another
// origin.
func (s *Server) guard(next http.Handler) http.Handler {
	checked := httpserve.Guard(next, httpserve.Hosts{Listen: s.cfg.Listen, Names: s.cfg.Hosts, Setting: "-allow-host"})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		checked.ServeHTTP(w, r)
	})
}

// lang picks the page language: ?lang= first (the switch on the page), then
// the browser's Accept-Language, Japanese by default.
func lang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); i18n.Valid(l) {
		return l
	}
	return i18n.Pick(r.Header.Get("Accept-Language"))
}

type pageData struct {
	Lang    string
	Store   string
	CSRF    string
	Strings template.JS // never rendered as HTML; see index.html
	Login   bool
	// PinResolvedMS is Config.PinResolved for the page script.
	PinResolvedMS int64
	Error         string
	T             map[string]string
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions.Ensure(w, r)
	if err != nil {
		s.serverError(w, "start session", err)
		return
	}
	if !sess.Authed {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	strs, err := json.Marshal(i18n.Table())
	if err != nil {
		s.serverError(w, "encode strings", err)
		return
	}
	l := lang(r)
	s.render(w, "index.html", pageData{
		Lang: l, Store: s.cfg.Store, CSRF: sess.CSRF, Strings: template.JS(strs),
		Login: s.sessions.LoginRequired(), T: i18n.Table()[l], PinResolvedMS: s.cfg.PinResolved.Milliseconds(),
	})
}

func (s *Server) render(w http.ResponseWriter, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		s.log.Error("render page", "page", name, "err", err)
	}
}

func (s *Server) serverError(w http.ResponseWriter, what string, err error) {
	s.log.Error(what, "err", err)
	http.Error(w, "display: internal error", http.StatusInternalServerError)
}

// snapshot is the first SSE message of a stream: the whole board, the
// broker state and the server's clock (the page corrects its countdowns by
// the difference).
type snapshot struct {
	board.Snapshot
	Broker brokerState `json:"broker"`
	Now    time.Time   `json:"now"`
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.Get(r)
	if !ok || !sess.Authed {
		http.Error(w, "display: log in first", http.StatusUnauthorized)
		return
	}
	// Subscribe before taking the snapshot: an update that lands between
	// the two is then sent twice (the page applies updates idempotently)
	// rather than lost.
	ch, cancel := s.hub.Subscribe()
	defer cancel()
	first, err := sse.JSON("snapshot", snapshot{Snapshot: s.board.Snapshot(), Broker: s.brokerState(), Now: s.now()})
	if err != nil {
		s.serverError(w, "encode snapshot", err)
		return
	}
	if err := sse.Stream(w, r, []sse.Message{first}, ch, 15*time.Second, s.done); err != nil {
		s.log.Debug("page stream ended", "err", err)
	}
}

// ResolveRequest is the body of POST /api/resolve.
type ResolveRequest struct {
	Register string `json:"register"`
	ReviewID string `json:"reviewId"`
	Action   string `json:"action"` // approve | reject
	PIN      string `json:"pin"`
}

// ResolveResponse answers POST /api/resolve.
type ResolveResponse struct {
	Command string `json:"command,omitempty"` // the command id sent to the register
	Error   string `json:"error,omitempty"`
}

func (s *Server) handleResolve(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.Get(r)
	if !ok || !sess.Authed {
		writeJSON(w, http.StatusUnauthorized, ResolveResponse{Error: "log in first"})
		return
	}
	if !s.sessions.CheckCSRF(r, r.Header.Get(CSRFHeader)) {
		writeJSON(w, http.StatusForbidden, ResolveResponse{Error: "missing or wrong CSRF token"})
		return
	}
	if !httpserve.IsJSON(r) {
		writeJSON(w, http.StatusUnsupportedMediaType, ResolveResponse{Error: "want application/json"})
		return
	}
	if !s.resolveL.Allow(clientKey(r), s.now()) {
		s.log.Warn("resolve rate limit hit", "client", clientKey(r))
		writeJSON(w, http.StatusTooManyRequests, ResolveResponse{Error: "too many attempts, wait a minute"})
		return
	}
	req, err := parseResolve(http.MaxBytesReader(w, r.Body, wire.MaxCommandBytes))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ResolveResponse{Error: err.Error()})
		return
	}
	if !s.board.Pending(req.Register, req.ReviewID) {
		writeJSON(w, http.StatusConflict, ResolveResponse{Error: "no open review " + req.ReviewID + " at register " + req.Register})
		return
	}
	review := pinKey(req.Register, req.ReviewID)
	if !s.pins.Send(clientKey(r), review, s.now()) {
		s.pinGuessing(req.Register, req.ReviewID, clientKey(r))
		w.Header().Set("Retry-After", strconv.Itoa(int(pinGuessWindow/time.Second)))
		writeJSON(w, http.StatusTooManyRequests, ResolveResponse{Error: "too many wrong PINs from this device; wait 15 minutes (other devices can still resolve)"})
		return
	}
	id, err := commandID()
	if err != nil {
		s.serverError(w, "command id", err)
		return
	}
	sent := false
	defer func() {
		if !sent {
			s.pins.Right(review) // never reached the register: no guess
		}
	}()
	cmd := wire.Command{
		ID: id, Type: wire.CmdResolve, Store: s.cfg.Store, Register: req.Register,
		ReviewID: req.ReviewID, Action: wire.Action(req.Action), PIN: wire.PIN(req.PIN),
		By: wire.DisplayUsername(s.cfg.Store), At: s.now().UTC(),
	}
	if err := cmd.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, ResolveResponse{Error: err.Error()})
		return
	}
	if err := s.publishCommand(r.Context(), cmd); err != nil {
		s.log.Warn("resolution not sent", "cmd", cmd, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, ResolveResponse{Error: "could not reach the register: " + err.Error()})
		return
	}
	sent = true
	s.log.Info("resolution sent", "cmd", cmd, "client", clientKey(r))
	if a, ok := s.board.MarkSent(req.Register, req.ReviewID, s.now()); ok {
		s.broadcast("alert", a)
	}
	writeJSON(w, http.StatusAccepted, ResolveResponse{Command: id})
}

// parseResolve decodes a resolve request strictly; each rejection says what
// was wrong. The PIN is only checked for shape (wire.Command does that); its
// value is the register's business.
func parseResolve(r io.Reader) (ResolveRequest, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var req ResolveRequest
	if err := dec.Decode(&req); err != nil {
		return ResolveRequest{}, fmt.Errorf("resolve request: %w", err)
	}
	if dec.More() {
		return ResolveRequest{}, errors.New("resolve request: trailing data after the JSON object")
	}
	if err := wire.ValidateRegister(req.Register); err != nil {
		return ResolveRequest{}, fmt.Errorf("resolve request: %w", err)
	}
	if err := wire.CheckEventID(req.ReviewID); err != nil {
		return ResolveRequest{}, fmt.Errorf("resolve request: reviewId: %w", err)
	}
	if req.Action != string(wire.Approve) && req.Action != string(wire.Reject) {
		return ResolveRequest{}, errors.New("resolve request: action must be approve or reject")
	}
	return req, nil
}

func commandID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "display-" + hex.EncodeToString(b), nil
}

// Manager PIN guesses per source (see auth.PINGuard): fewer than the
// register's limit per review (5) and per register (10 in 15 minutes), so
// one device cannot use up the attempts of the manager's.
const (
	pinGuessesPerSource = 3
	pinGuessWindow      = 15 * time.Minute
)

func pinKey(register, reviewID string) string { return register + "/" + reviewID }

// pinGuessing tells the page that a device ran out of PIN guesses for a
// review: the review shows it (board.PINGuessing), and the log names the
// device. HQ hears of the guesses from the register, which reports every
// wrong PIN it was sent and raises its own alert when its limits fill.
func (s *Server) pinGuessing(register, reviewID, client string) {
	s.log.Warn("PIN guessing at the display: device out of PIN attempts", "register", register, "review", reviewID, "client", client)
	if a, ok := s.board.Refuse(register, reviewID, board.PINGuessing); ok {
		s.broadcast("alert", a)
	}
}

// clientKey identifies a client for rate limits: its address without the
// port (a browser opens many connections). Every loopback address is one
// client, since all of 127.0.0.0/8 is this machine and any local process
// may pick any of it; an IPv6 client is its /64, which one host can fill.
func clientKey(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		h = r.RemoteAddr
	}
	ip := net.ParseIP(h)
	switch {
	case ip == nil:
		return h
	case ip.IsLoopback():
		return "loopback"
	case ip.To4() == nil:
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if !s.sessions.LoginRequired() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	l := lang(r)
	s.render(w, "login.html", pageData{Lang: l, Store: s.cfg.Store, T: i18n.Table()[l]})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	l := lang(r)
	if !s.loginL.Allow(clientKey(r), s.now()) {
		w.WriteHeader(http.StatusTooManyRequests)
		s.render(w, "login.html", pageData{Lang: l, Store: s.cfg.Store, T: i18n.Table()[l], Error: i18n.T(l, "tooMany")})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "display: bad login form", http.StatusBadRequest)
		return
	}
	if _, err := s.sessions.Login(w, r, r.PostForm.Get("password")); err != nil {
		if errors.Is(err, auth.ErrWrongPassword) {
			s.log.Warn("failed display login", "client", clientKey(r))
			w.WriteHeader(http.StatusUnauthorized)
			s.render(w, "login.html", pageData{Lang: l, Store: s.cfg.Store, T: i18n.Table()[l], Error: i18n.T(l, "loginFailed")})
			return
		}
		s.serverError(w, "login", err)
		return
	}
	s.log.Info("display login", "client", clientKey(r))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if !s.sessions.CheckCSRF(r, r.PostFormValue("csrf")) {
		http.Error(w, "display: missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	s.sessions.Logout(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
