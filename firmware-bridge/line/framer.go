package line

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/posguard/posguard/firmware-bridge/aim"
	"github.com/posguard/posguard/firmware-bridge/scan"
)

// ErrTooLong is wrapped by the rejection of a frame longer than MaxFrame.
var ErrTooLong = errors.New("frame too long")

// Framer cuts a byte stream into scans. It holds at most MaxFrame plus the
// suffix length of unterminated input: an overlong frame is dropped up to
// its suffix, never buffered without bound.
type Framer struct {
	f        Framing
	max      int
	buf      []byte
	dropping bool // inside an overlong frame, discarding until the suffix
	emit     func(scan.Scan)
	reject   func(error)
}

// NewFramer makes a framer that calls emit for each frame and reject (which
// may be nil) for each dropped one, with the reason.
func NewFramer(f Framing, emit func(scan.Scan), reject func(error)) *Framer {
	if reject == nil {
		reject = func(error) {}
	}
	m := f.maxFrame()
	return &Framer{f: f, max: m, emit: emit, reject: reject, buf: make([]byte, 0, min(m, 512)+len(f.Suffix))}
}

// Buffered is the number of bytes held waiting for a suffix.
func (fr *Framer) Buffered() int { return len(fr.buf) }

// Reset forgets a partial frame (after the port was reopened).
func (fr *Framer) Reset() { fr.buf, fr.dropping = fr.buf[:0], false }

// Feed consumes p; at is the time stamped on the scans it completes.
func (fr *Framer) Feed(p []byte, at time.Time) {
	suf := fr.f.Suffix
	if len(suf) == 0 { // invalid framing: nothing could ever end a frame
		fr.reject(errors.New("no suffix configured"))
		return
	}
	for len(p) > 0 {
		// Search only where a suffix could newly appear: the tail of buf that
		// might hold its first bytes, plus p.
		keep := min(len(fr.buf), len(suf)-1)
		start := len(fr.buf) - keep
		room := fr.max + len(fr.f.Prefix) + aim.Len + len(suf) - len(fr.buf)
		take := min(len(p), max(room, len(suf)))
		fr.buf = append(fr.buf, p[:take]...)
		p = p[take:]
		for {
			i := bytes.Index(fr.buf[start:], suf)
			if i < 0 {
				break
			}
			end := start + i
			if fr.dropping {
				fr.dropping = false
			} else {
				fr.frame(fr.buf[:end], at)
			}
			n := copy(fr.buf, fr.buf[end+len(suf):])
			fr.buf = fr.buf[:n]
			start = 0
		}
		if limit := fr.max + len(fr.f.Prefix) + aim.Len; len(fr.buf) > limit+len(suf)-1 {
			if !fr.dropping {
				fr.reject(fmt.Errorf("%w: more than %d bytes without suffix %q; dropped up to the next suffix", ErrTooLong, fr.max, fr.f.Suffix.String()))
				fr.dropping = true
			}
			// Keep only what could be the start of the suffix.
			n := copy(fr.buf, fr.buf[len(fr.buf)-(len(suf)-1):])
			fr.buf = fr.buf[:n]
		}
	}
}

func (fr *Framer) frame(b []byte, at time.Time) {
	b = bytes.TrimPrefix(b, fr.f.Prefix)
	if len(b) == 0 {
		return // blank line between scans, e.g. CRLF read with suffix CR
	}
	sym := scan.Unknown
	if fr.f.AIM && len(b) >= aim.Len {
		if s, ok := aim.Lookup(b[:aim.Len]); ok {
			sym, b = s, b[aim.Len:]
		}
	}
	if len(b) > fr.max {
		fr.reject(fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(b), fr.max))
		return
	}
	if len(b) == 0 {
		fr.reject(errors.New("frame has an AIM identifier but no data"))
		return
	}
	sym = refine(sym, b)
	fr.emit(scan.Scan{Data: bytes.Clone(b), Symbology: sym, At: at})
}

// refine settles what an AIM id leaves open (]E0 is any EAN/UPC) and infers
// the symbology when there was no id.
func refine(sym scan.Symbology, b []byte) scan.Symbology {
	switch {
	case sym == scan.Unknown:
		return scan.Infer(b)
	case sym == scan.EAN13 && len(b) == 12:
		return scan.UPCA
	case sym == scan.EAN13 && len(b) == 8:
		return scan.EAN8
	}
	return sym
}
