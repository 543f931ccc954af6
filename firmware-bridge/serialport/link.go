package serialport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.bug.st/serial"
)

// ErrDown is returned by Write while the port is not open.
var ErrDown = errors.New("serial port not connected")

// Link keeps one port open: it opens it, runs a session on it, and when
// the session ends with the port gone (USB unplug, read error, pty hangup)
// logs that once, retries with backoff and runs a new session when the
// port is back.
type Link struct {
	cfg     Config
	log     *slog.Logger
	onState func(up bool)
	open    func(Config) (serial.Port, error)

	up   atomic.Bool
	mu   sync.Mutex // guards port against a Write racing a Close
	port serial.Port
}

// NewLink makes a link; onState (may be nil) is called on every change of
// Up, from the goroutine running Run.
func NewLink(cfg Config, log *slog.Logger, onState func(up bool)) *Link {
	if onState == nil {
		onState = func(bool) {}
	}
	return &Link{cfg: cfg, log: log.With("port", cfg.Port), onState: onState, open: Open}
}

// Up reports whether the port is open now.
func (l *Link) Up() bool { return l.up.Load() }

// Write writes b to the open port, or fails with ErrDown.
func (l *Link) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.port == nil {
		return 0, ErrDown
	}
	n, err := l.port.Write(b)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", l.cfg.Port, err)
	}
	return n, nil
}

// Session uses an open port until it fails; it must return when ctx is
// done or the port is closed under it.
type Session func(ctx context.Context, p serial.Port) error

// Run keeps the port open and runs session on it until ctx is done. It
// returns nil when ctx is done: losing the port is never fatal.
func (l *Link) Run(ctx context.Context, session Session) error {
	bo := l.cfg.backoff()
	lost := false // logged that the port is gone; stay quiet until it is back
	for ctx.Err() == nil {
		p, err := l.open(l.cfg)
		if err != nil {
			if !lost {
				l.log.Warn("serial port unavailable, retrying", "err", err)
				lost = true
			} else {
				l.log.Debug("serial port still unavailable", "err", err)
			}
			if !sleep(ctx, bo.Next()) {
				break
			}
			continue
		}
		if lost {
			l.log.Info("serial port back")
		} else {
			l.log.Info("serial port open")
		}
		lost = false
		l.setPort(p)
		began := time.Now()
		err = l.session(ctx, p, session)
		l.setPort(nil)
		if ctx.Err() != nil {
			break
		}
		l.log.Warn("serial port lost, reconnecting", "err", err)
		lost = true
		if time.Since(began) > bo.Max {
			bo.Reset() // it was working: come back quickly
		}
		if !sleep(ctx, bo.Next()) {
			break
		}
	}
	return nil
}

func (l *Link) session(ctx context.Context, p serial.Port, session Session) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { // closing the port is what unblocks a Read
		select {
		case <-sctx.Done():
			l.mu.Lock()
			p.Close()
			l.mu.Unlock()
		case <-done:
		}
	}()
	err := session(sctx, p)
	close(done)
	l.mu.Lock()
	p.Close()
	l.mu.Unlock()
	if err == nil {
		err = errors.New("session ended")
	}
	return err
}

func (l *Link) setPort(p serial.Port) {
	l.mu.Lock()
	l.port = p
	l.mu.Unlock()
	if up := p != nil; l.up.Swap(up) != up {
		l.onState(up)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
