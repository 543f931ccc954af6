// Package scanner is the agent's view of a barcode scanner: scans come out
// of Run, feedback goes back with Good, Review and Deny, whatever the wire
// protocol (line framing or Zebra SSI) and however often the port comes and
// goes.
package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/serialport"
	"github.com/posguard/posguard/firmware-bridge/ssi"
	"github.com/posguard/posguard/firmware-bridge/ssilink"
)

// Mode is the wire protocol of a scanner.
type Mode string

const (
	ModeLine Mode = "line"
	ModeSSI  Mode = "ssi"
)

// Config is a scanner link as written in the agent configuration.
type Config struct {
	serialport.Config `yaml:",inline"`
	Mode              Mode `yaml:"mode"`
	line.Framing      `yaml:",inline"`
	// Feedback is what Good, Review and Deny send in line mode: many
	// scanners beep or light on a configured byte string. Empty sends
	// nothing.
	Feedback LineFeedback `yaml:"feedback,omitempty"`
	// SSI tunes SSI mode.
	SSI SSIConfig `yaml:"ssi,omitempty"`
}

// LineFeedback holds the byte strings of line-mode feedback.
type LineFeedback struct {
	Good   line.Bytes `yaml:"good,omitempty"`
	Review line.Bytes `yaml:"review,omitempty"`
	Deny   line.Bytes `yaml:"deny,omitempty"`
}

// SSIConfig tunes SSI mode: the link timing and the beep codes (SSI
// guide, BEEP "beep code" table) of each feedback.
type SSIConfig struct {
	ssilink.Config `yaml:",inline"`
	// Beep codes; nil takes the default: good 0x00 (one short high),
	// review 0x16 (high-low), deny 0x11 (three long low).
	GoodBeep   *byte `yaml:"goodBeep,omitempty"`
	ReviewBeep *byte `yaml:"reviewBeep,omitempty"`
	DenyBeep   *byte `yaml:"denyBeep,omitempty"`
}

// Default beep codes.
const (
	BeepGood   byte = 0x00
	BeepReview byte = 0x16
	BeepDeny   byte = 0x11
	// LEDDecode selects the decode LED for LED_ON/LED_OFF.
	LEDDecode byte = 0x01
)

// Validate checks c; key is its configuration path ("scanner").
func (c Config) Validate(key string) error {
	if err := c.Config.Validate(key); err != nil {
		return err
	}
	switch c.Mode {
	case ModeLine:
		if err := c.Framing.Validate(key); err != nil {
			return err
		}
	case ModeSSI:
		if err := c.SSI.Config.Validate(key + ".ssi"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s.mode: must be line or ssi, got %q", key, c.Mode)
	}
	return nil
}

// ErrDown is returned by feedback while the scanner is not connected.
var ErrDown = serialport.ErrDown

// Scanner is one scanner link.
type Scanner struct {
	cfg  Config
	log  *slog.Logger
	link *serialport.Link

	mu    sync.Mutex
	host  *ssilink.Host            // SSI mode, while connected
	drops map[ssi.DropReason]int64 // partial SSI messages thrown away, ever
}

// Drops counts the partial SSI messages thrown away since New, by reason
// (every reason present, zero or not).
func (s *Scanner) Drops() map[ssi.DropReason]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[ssi.DropReason]int64, len(ssi.DropReasons))
	for _, r := range ssi.DropReasons {
		out[r] = s.drops[r]
	}
	return out
}

func (s *Scanner) countDrop(r ssi.DropReason) {
	s.mu.Lock()
	s.drops[r]++
	s.mu.Unlock()
}

// New makes a scanner; onState (may be nil) is told when the port comes
// and goes, for the agent's status and metrics.
func New(cfg Config, log *slog.Logger, onState func(up bool)) (*Scanner, error) {
	if err := cfg.Validate("scanner"); err != nil {
		return nil, err
	}
	log = log.With("link", "scanner", "mode", string(cfg.Mode))
	return &Scanner{cfg: cfg, log: log, link: serialport.NewLink(cfg.Config, log, onState),
		drops: make(map[ssi.DropReason]int64)}, nil
}

// Up reports whether the scanner port is open.
func (s *Scanner) Up() bool { return s.link.Up() }

// Run reads scans into out until ctx is done, reopening the port whenever
// it goes away. It returns nil when ctx ends.
func (s *Scanner) Run(ctx context.Context, out chan<- scan.Scan) error {
	return s.link.Run(ctx, func(ctx context.Context, p serial.Port) error {
		if s.cfg.Mode == ModeSSI {
			return s.runSSI(ctx, p, out)
		}
		return s.runLine(ctx, p, out)
	})
}

func deliver(ctx context.Context, out chan<- scan.Scan, sc scan.Scan) {
	select {
	case out <- sc:
	case <-ctx.Done():
	}
}

func (s *Scanner) runLine(ctx context.Context, p serial.Port, out chan<- scan.Scan) error {
	fr := line.NewFramer(s.cfg.Framing, func(sc scan.Scan) { deliver(ctx, out, sc) },
		func(err error) { s.log.Warn("scanner frame dropped", "err", err) })
	buf := make([]byte, 1024)
	for {
		n, err := p.Read(buf)
		if err != nil {
			return fmt.Errorf("read scanner %s: %w", s.cfg.Port, err)
		}
		fr.Feed(buf[:n], time.Now())
	}
}

// ssiQueue is how many decoded scans may wait for the agent. The reader
// must keep reading while the agent is busy: the agent's own feedback
// commands wait for ACKs that only the reader sees.
const ssiQueue = 64

func (s *Scanner) runSSI(ctx context.Context, p serial.Port, out chan<- scan.Scan) error {
	queue := make(chan scan.Scan, ssiQueue)
	forwarded := make(chan struct{})
	defer func() { close(queue); <-forwarded }()
	go func() {
		defer close(forwarded)
		for sc := range queue {
			deliver(ctx, out, sc)
		}
	}()
	h := ssilink.New(p, s.cfg.SSI.Config, func(d ssilink.Decoded) {
		sym := ssi.Symbology(d.CodeType)
		if sym == scan.Unknown {
			sym = scan.Infer(d.Data)
		}
		sc := scan.Scan{Data: d.Data, Symbology: sym, At: d.At}
		select {
		case queue <- sc:
		default:
			s.log.Warn("agent is not taking scans; scanner reads wait", "queued", ssiQueue)
			select {
			case queue <- sc:
			case <-ctx.Done():
			}
		}
	}, s.countDrop, s.log)
	s.mu.Lock()
	s.host = h
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.host = nil
		s.mu.Unlock()
		h.Close()
	}()
	go func() { // needs the read loop below running to see the ACK
		if err := h.Start(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scanner did not take the SSI start-up parameters", "err", err)
		}
	}()
	buf := make([]byte, 512)
	for {
		n, err := p.Read(buf)
		if err != nil {
			return fmt.Errorf("read scanner %s: %w", s.cfg.Port, err)
		}
		if err := h.Feed(buf[:n], time.Now()); err != nil {
			return err
		}
	}
}

// Good tells the clerk the scan went through.
func (s *Scanner) Good(ctx context.Context) error {
	return s.feedback(ctx, s.cfg.Feedback.Good, beep(s.cfg.SSI.GoodBeep, BeepGood), ssi.OpLEDOff)
}

// Review tells the clerk to call for a check.
func (s *Scanner) Review(ctx context.Context) error {
	return s.feedback(ctx, s.cfg.Feedback.Review, beep(s.cfg.SSI.ReviewBeep, BeepReview), ssi.OpLEDOn)
}

// Deny tells the clerk the payment is refused.
func (s *Scanner) Deny(ctx context.Context) error {
	return s.feedback(ctx, s.cfg.Feedback.Deny, beep(s.cfg.SSI.DenyBeep, BeepDeny), ssi.OpLEDOn)
}

// SetScanning enables or disables the scanner's trigger (SSI SCAN_ENABLE /
// SCAN_DISABLE), e.g. while a payment waits for a manager. Line-mode
// scanners have no such command: ErrUnsupported.
func (s *Scanner) SetScanning(ctx context.Context, enabled bool) error {
	if s.cfg.Mode != ModeSSI {
		return fmt.Errorf("scanner in %s mode: %w", s.cfg.Mode, errors.ErrUnsupported)
	}
	s.mu.Lock()
	h := s.host
	s.mu.Unlock()
	if h == nil {
		return ErrDown
	}
	op := ssi.OpScanDisable
	if enabled {
		op = ssi.OpScanEnable
	}
	if err := h.Command(ctx, op, nil); err != nil {
		return fmt.Errorf("scanner enable=%v: %w", enabled, err)
	}
	return nil
}

func beep(set *byte, def byte) byte {
	if set != nil {
		return *set
	}
	return def
}

func (s *Scanner) feedback(ctx context.Context, lineBytes []byte, beepCode, led byte) error {
	if s.cfg.Mode == ModeLine {
		if len(lineBytes) == 0 {
			if !s.link.Up() {
				return ErrDown
			}
			return nil
		}
		_, err := s.link.Write(lineBytes)
		return err
	}
	s.mu.Lock()
	h := s.host
	s.mu.Unlock()
	if h == nil {
		return ErrDown
	}
	// The LED tells review/deny apart from good after the beep is over; a
	// scanner without the LED NAKs it and the beep still counts.
	berr := h.Command(ctx, ssi.OpBeep, []byte{beepCode})
	lerr := h.Command(ctx, led, []byte{LEDDecode})
	if berr != nil {
		return fmt.Errorf("scanner feedback beep: %w", berr)
	}
	if lerr != nil && !errors.Is(lerr, ssilink.ErrNak) {
		return fmt.Errorf("scanner feedback LED: %w", lerr)
	}
	return nil
}
