// Package display is the store alert display: it follows one store's
// registers over MQTT (alerts and retained status), keeps the picture in a
// board, pushes it to browsers over Server-Sent Events, and sends a
// manager's review resolution to the register's cmd topic.
//
// The display never checks or stores PINs: it passes them straight to the
// register, which checks them and reports the outcome as a resolution event.
package display

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/display/auth"
	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

// DefaultListen is loopback: a display is reachable beyond the machine only
// when configured to be, and then only with a password.
const DefaultListen = "127.0.0.1:8090"

// Config is everything the display needs; the CLI fills it from flags.
type Config struct {
	Store string // store id, as in the topics
	// MQTT is the broker and the TLS files. Without a client certificate
	// the username defaults to the display's (display/STORE); with one,
	// the broker takes the certificate's CN. MaxReconnect defaults to 5s.
	MQTT mqttconn.Config
	// Listen is the HTTP address; empty means DefaultListen.
	Listen string
	// PasswordHash is the bcrypt hash of the store login. Required when
	// Listen is not a loopback address.
	PasswordHash string
	// Hosts are further names browsers use for the display in the Host
	// header (its DNS name); others are refused against DNS rebinding.
	// localhost, loopback addresses and the listen host always work, and
	// every IP literal when Listen is 0.0.0.0 or [::].
	Hosts []string
	// HTTPLimits bound the page's connections and requests (zero fields:
	// httpserve.Defaults).
	HTTPLimits httpserve.Limits
	// HTTPS, when set, serves the page over TLS (and marks the session
	// cookie Secure). Recommended whenever Listen is beyond loopback: the
	// login password and the PINs cross the network.
	HTTPS *tls.Config
	// ReviewTimeout is how long a register holds a review (its deadline is
	// the alert time plus this). 0 means 2 minutes.
	ReviewTimeout time.Duration
	// AnswerWait is how long the page shows "sent" before offering the
	// buttons again when the register does not answer. 0 means 15 s.
	AnswerWait time.Duration
	// PinResolved is how long a review stays pinned at the top of the page
	// with its outcome once resolved, so the manager sees the result where
	// the card was. 0 means 2 minutes.
	PinResolved time.Duration
	// ResolveLimit is how many resolutions one client may send per minute
	// (each carries a PIN guess). 0 means 5.
	ResolveLimit int
	// Keep bounds the finished alerts remembered; 0 means board.DefaultKeep.
	Keep int
	// StateFile, when set, keeps the board's alerts and the MQTT client id
	// across restarts: read and written at New, rewritten (atomically)
	// within a second of each change and at shutdown. The broker session
	// is then persistent, so alerts published while the display is down
	// are delivered when it is back. Without it a restart forgets the open
	// reviews and misses what came meanwhile.
	StateFile string
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is a running display. Create with New, then Run or Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	board    *board.Board
	hub      *sse.Hub
	sessions *auth.Manager
	resolveL *auth.Limiter
	loginL   *auth.Limiter
	pins     *auth.PINGuard
	clientID string
	inbox    chan inbound
	mqttOpts *paho.ClientOptions
	mqtt     *mqttLink
	// saved is the alerts as last written to StateFile; only tick and the
	// end of Serve touch it, one after the other.
	saved   []byte
	saveErr string

	mu        sync.Mutex
	connected bool
	changedAt time.Time
	done      chan struct{}
}

// New checks cfg and builds a server. It refuses to listen beyond loopback
// without a password hash.
func New(cfg Config) (*Server, error) {
	if err := wire.ValidateStore(cfg.Store); err != nil {
		return nil, fmt.Errorf("display: %w", err)
	}
	if cfg.MQTT.Username == "" && cfg.MQTT.CertFile == "" {
		cfg.MQTT.Username = wire.DisplayUsername(cfg.Store)
	}
	if cfg.MQTT.MaxReconnect == 0 {
		// The page shows "broker lost" until the display is back.
		cfg.MQTT.MaxReconnect = 5 * time.Second
	}
	if err := cfg.MQTT.Validate(); err != nil {
		return nil, fmt.Errorf("display: %w", err)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	loop, err := httpserve.IsLoopback(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("display: listen address: %w", err)
	}
	for _, h := range cfg.Hosts {
		if err := httpserve.CheckName(h); err != nil {
			return nil, fmt.Errorf("display: allowed host: %w", err)
		}
	}
	if !loop && cfg.PasswordHash == "" {
		return nil, fmt.Errorf("display: listening on %s (beyond 127.0.0.1) requires a password hash", cfg.Listen)
	}
	if cfg.ReviewTimeout <= 0 {
		cfg.ReviewTimeout = 2 * time.Minute
	}
	if cfg.PinResolved <= 0 {
		cfg.PinResolved = 2 * time.Minute
	}
	if cfg.AnswerWait <= 0 {
		cfg.AnswerWait = 15 * time.Second
	}
	if cfg.ResolveLimit <= 0 {
		cfg.ResolveLimit = 5
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sessions, err := auth.New(auth.Options{PasswordHash: cfg.PasswordHash, Secure: cfg.HTTPS != nil, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("display: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Log.With("store", cfg.Store),
		now:      cfg.Now,
		board:    board.New(cfg.Store, cfg.Keep),
		hub:      sse.NewHub(256),
		sessions: sessions,
		resolveL: auth.NewLimiter(cfg.ResolveLimit, time.Minute),
		loginL:   auth.NewLimiter(10, time.Minute),
		pins:     auth.NewPINGuard(pinGuessesPerSource, pinGuessWindow),
		// Brokers bind the client id to the identity, so a store has one
		// display process (any number of browsers look at it).
		clientID: wire.DisplayUsername(cfg.Store),
		inbox:    make(chan inbound, 1024),
		done:     make(chan struct{}),
	}
	if cfg.StateFile != "" {
		if err := s.loadState(); err != nil {
			return nil, err
		}
	}
	// Built now, with the client id the state file may have restored, so
	// a bad broker URL or TLS file fails the start, not the first connect.
	if s.mqttOpts, err = s.mqttOptions(); err != nil {
		return nil, fmt.Errorf("display: %w", err)
	}
	if cfg.StateFile != "" {
		// Written at once, so the client id (the broker session) is kept
		// even if the display is killed before its first change, and an
		// unwritable path fails the start instead of every later save.
		if err := s.saveState(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run listens on the configured address and serves until ctx ends.
func (s *Server) Run(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("display: listen %s: %w", s.cfg.Listen, err)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	return s.Serve(ctx, ln)
}

// Serve connects to the broker (retrying in the background until it is
// up) and serves HTTP on ln until ctx ends; then it disconnects and closes
// the page streams.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	link := s.dial()
	s.mqtt = link
	srv, ln := httpserve.Server(ln, s.Handler(), s.cfg.HTTPLimits, s.log)
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	if s.cfg.HTTPS != nil {
		ln = tls.NewListener(ln, s.cfg.HTTPS)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.pump(ctx) }()
	go func() { defer wg.Done(); s.tick(ctx) }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("display serving", "addr", ln.Addr().String(), "broker", s.cfg.MQTT.Redacted(), "login", s.sessions.LoginRequired())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	close(s.done) // ends the SSE streams so Shutdown does not wait on them
	shutCtx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer c2()
	_ = srv.Shutdown(shutCtx)
	link.close()
	cancel()
	wg.Wait()
	if serr := s.saveState(); serr != nil {
		s.log.Error("state not saved at shutdown", "file", s.cfg.StateFile, "err", serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("display: serve http: %w", err)
	}
	return nil
}

// tick expires reviews once a second: countdowns end on the page by
// themselves, but the server's word is what pins or unpins them. It also
// saves the board when it changed, so a restart loses at most a second.
func (s *Server) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, a := range s.board.Expire(s.now(), s.cfg.AnswerWait) {
				s.broadcast("alert", a)
			}
			s.keepState()
		}
	}
}

// keepState saves the board, logging a failure once rather than every
// second, and its end.
func (s *Server) keepState() {
	err := s.saveState()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case msg == s.saveErr:
	case err != nil:
		s.log.Error("board not saved; a restart would lose it", "file", s.cfg.StateFile, "err", err)
	default:
		s.log.Info("board saved again", "file", s.cfg.StateFile)
	}
	s.saveErr = msg
}

// brokerState is what the page is told about the MQTT link.
type brokerState struct {
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
}

func (s *Server) setConnected(up bool) {
	s.mu.Lock()
	s.connected, s.changedAt = up, s.now()
	st := brokerState{Connected: s.connected, Since: s.changedAt}
	s.mu.Unlock()
	s.broadcast("broker", st)
}

func (s *Server) brokerState() brokerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return brokerState{Connected: s.connected, Since: s.changedAt}
}

func (s *Server) broadcast(name string, v any) {
	m, err := sse.JSON(name, v)
	if err != nil {
		s.log.Error("encode page update", "event", name, "err", err)
		return
	}
	if n := s.hub.Publish(m); n > 0 {
		s.log.Warn("cut off slow pages; they will reconnect", "pages", n)
	}
}
