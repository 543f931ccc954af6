// Package posout re-emits forwarded scans to the POS-facing port (often one
// end of a virtual COM pair) in the framing the POS expects.
package posout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"go.bug.st/serial"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/serialport"
)

// Config is the POS output as written in the agent configuration.
type Config struct {
	serialport.Config `yaml:",inline"`
	line.Framing      `yaml:",inline"`
}

// Validate checks c; key is its configuration path ("pos").
func (c Config) Validate(key string) error {
	if err := c.Config.Validate(key); err != nil {
		return err
	}
	return c.Framing.Validate(key)
}

// ErrDown is returned by Send while the POS port is not open.
var ErrDown = serialport.ErrDown

// POS is the output link.
type POS struct {
	cfg  Config
	link *serialport.Link

	mu  sync.Mutex // Send order is wire order
	buf []byte
}

// New makes a POS output; onState (may be nil) is told when the port
// comes and goes.
func New(cfg Config, log *slog.Logger, onState func(up bool)) (*POS, error) {
	if err := cfg.Validate("pos"); err != nil {
		return nil, err
	}
	return &POS{cfg: cfg, link: serialport.NewLink(cfg.Config, log.With("link", "pos"), onState)}, nil
}

// Up reports whether the POS port is open.
func (p *POS) Up() bool { return p.link.Up() }

// Run keeps the port open until ctx is done. The POS rarely talks back;
// reading is how a hangup or unplug is noticed between scans.
func (p *POS) Run(ctx context.Context) error {
	return p.link.Run(ctx, func(ctx context.Context, port serial.Port) error {
		_, err := io.Copy(io.Discard, port)
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read pos %s: %w", p.cfg.Port, err)
	})
}

// Send writes s in the POS framing, in one write, in call order.
func (p *POS) Send(s scan.Scan) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = p.cfg.Framing.Append(p.buf[:0], s)
	if _, err := p.link.Write(p.buf); err != nil {
		return fmt.Errorf("send scan to pos: %w", err)
	}
	return nil
}
