// Package httpserve holds what the agent, the display and HQ do alike to
// serve HTTP safely: timeouts on every phase of a connection, a cap on
// concurrent connections, a cap on each request's body, and checks of the
// Host, Origin and Content-Type headers against DNS rebinding and requests
// forged by web pages. Each server sets its limits here and nowhere else.
package httpserve

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound one server's connections and requests. Zero fields take
// the defaults below.
type Limits struct {
	// ReadHeader bounds the request line and headers (default 5s).
	ReadHeader time.Duration
	// Read bounds the whole request, body included (default 15s): a
	// client that trickles its body is cut off instead of holding a
	// connection and a goroutine indefinitely. Past it net/http also
	// ends the request's context, so a handler still working then sees
	// its caller as gone (long responses lift it with Extend).
	Read time.Duration
	// Write bounds the response, from the end of the request headers
	// (default 30s). Long responses (streams, exports) extend it as they
	// go with Extend.
	Write time.Duration
	// Idle bounds a keep-alive connection waiting for its next request
	// (default 60s).
	Idle time.Duration
	// MaxConns caps the connections served at once (default 128); further
	// ones wait in the kernel's accept queue, so a flood costs no file
	// descriptors or memory here.
	MaxConns int
	// MaxHeaderBytes caps the request headers (default 16 KiB; net/http
	// would allow 1 MiB).
	MaxHeaderBytes int
	// MaxBodyBytes caps every request body (default 1 MiB); handlers may
	// read less.
	MaxBodyBytes int64
}

// Defaults are the limits a zero Limits gets.
var Defaults = Limits{
	ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second,
	MaxConns: 128, MaxHeaderBytes: 16 << 10, MaxBodyBytes: 1 << 20,
}

// WithDefaults fills the zero fields of l from Defaults.
func (l Limits) WithDefaults() Limits {
	d := Defaults
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.ReadHeader, d.ReadHeader)
	set(&l.Read, d.Read)
	set(&l.Write, d.Write)
	set(&l.Idle, d.Idle)
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	return l
}

// Server makes the server for h with the limits and wraps ln so it hands
// out at most MaxConns connections at once; serve with srv.Serve(lim).
// A TLS listener goes around lim, not under it, so handshakes count too.
// log receives net/http's own complaints (nil: discarded).
func Server(ln net.Listener, h http.Handler, l Limits, log *slog.Logger) (srv *http.Server, lim net.Listener) {
	l = l.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	body := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, l.MaxBodyBytes)
		h.ServeHTTP(w, r)
	})
	srv = &http.Server{
		Handler:           body,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return srv, netutil.LimitListener(ln, l.MaxConns)
}

// Extend prepares a long response for its next write: it lifts the read
// deadline (past it net/http cancels the request's context, ending a
// stream that is still wanted) and moves the write deadline to d from now,
// so a client that stops reading is still cut off. Call it before each
// write or batch of writes.
func Extend(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	// ErrNotSupported only comes from writers without a connection
	// (httptest recorders), which have no deadlines to move.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(d))
}

// Error answers with the JSON error body all three APIs use:
// {"error": msg}, not cached.
func Error(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
