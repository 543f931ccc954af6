package sim

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/posguard/posguard/firmware-bridge/scan"
)

// Step is one line of a scanner script.
type Step struct {
	Op      string // scan, raw, sleep, unplug, replug, wait
	Sym     scan.Symbology
	Data    []byte
	Sleep   time.Duration
	Corrupt bool // "bad <sym> <data>": first SSI transmission has a wrong checksum
}

var scriptSyms = map[string]scan.Symbology{
	"ean13": scan.EAN13, "jan": scan.EAN13, "ean8": scan.EAN8, "upca": scan.UPCA,
	"itf14": scan.ITF14, "gs1-128": scan.GS1128, "code128": scan.Code128,
	"qr": scan.QR, "datamatrix": scan.DataMatrix,
}

// MaxScriptData bounds the data of one scripted scan.
const MaxScriptData = 64 << 10

// ParseStep reads one script line. ok is false for blank lines and
// comments (#).
//
//	ean13 4901234567894      scan (also jan, ean8, upca, itf14, gs1-128, code128, qr, datamatrix)
//	bad ean13 4901234567894  scan whose first SSI packet has a wrong checksum
//	raw 02414243             bytes as they are, hex
//	sleep 200ms              pause
//	unplug / replug          the port vanishes / comes back at the same path
//	wait                     wait until the host opens the port
func ParseStep(text string) (st Step, ok bool, err error) {
	text = strings.TrimSpace(text)
	if text == "" || strings.HasPrefix(text, "#") {
		return Step{}, false, nil
	}
	word, rest, _ := strings.Cut(text, " ")
	rest = strings.TrimSpace(rest)
	switch word {
	case "unplug", "replug", "wait":
		if rest != "" {
			return Step{}, false, fmt.Errorf("%s takes no argument, got %q", word, rest)
		}
		return Step{Op: word}, true, nil
	case "sleep":
		d, err := time.ParseDuration(rest)
		if err != nil {
			return Step{}, false, fmt.Errorf("sleep: %w", err)
		}
		if d < 0 || d > time.Hour {
			return Step{}, false, fmt.Errorf("sleep: %v is not between 0 and 1h", d)
		}
		return Step{Op: "sleep", Sleep: d}, true, nil
	case "raw":
		b, err := hex.DecodeString(strings.ReplaceAll(rest, " ", ""))
		if err != nil {
			return Step{}, false, fmt.Errorf("raw: bytes must be hex: %w", err)
		}
		if len(b) == 0 {
			return Step{}, false, errors.New("raw: no bytes")
		}
		if len(b) > MaxScriptData {
			return Step{}, false, fmt.Errorf("raw: %d bytes, limit %d", len(b), MaxScriptData)
		}
		return Step{Op: "raw", Data: b}, true, nil
	case "bad":
		st, ok, err := ParseStep(rest)
		if err != nil {
			return Step{}, false, fmt.Errorf("bad: %w", err)
		}
		if !ok || st.Op != "scan" || st.Corrupt {
			return Step{}, false, fmt.Errorf("bad: must be followed by a scan, got %q", rest)
		}
		st.Corrupt = true
		return st, true, nil
	}
	sym, known := scriptSyms[word]
	if !known {
		return Step{}, false, fmt.Errorf("unknown command %q (want a symbology, bad, raw, sleep, unplug, replug, wait)", word)
	}
	if rest == "" {
		return Step{}, false, fmt.Errorf("%s: no data", word)
	}
	if len(rest) > MaxScriptData {
		return Step{}, false, fmt.Errorf("%s: %d bytes, limit %d", word, len(rest), MaxScriptData)
	}
	return Step{Op: "scan", Sym: sym, Data: []byte(rest)}, true, nil
}

// Play runs a script read from r line by line (so a terminal can type it),
// writing what happens and every feedback event to out. It stops at the
// first failing step, naming its line.
func (s *Sim) Play(ctx context.Context, r io.Reader, out io.Writer) error {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		mu.Unlock()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case e := <-s.events:
				say("< %s", e)
			}
		}
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 2*MaxScriptData)
	for n := 1; sc.Scan(); n++ {
		st, ok, err := ParseStep(sc.Text())
		if err != nil {
			return fmt.Errorf("script line %d: %w", n, err)
		}
		if !ok {
			continue
		}
		if err := s.Do(ctx, st); err != nil {
			return fmt.Errorf("script line %d: %w", n, err)
		}
		say("> %s", sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read script: %w", err)
	}
	return nil
}

// Do performs one step.
func (s *Sim) Do(ctx context.Context, st Step) error {
	switch st.Op {
	case "scan":
		if st.Corrupt {
			return s.ScanCorrupt(ctx, st.Sym, st.Data)
		}
		return s.Scan(ctx, st.Sym, st.Data)
	case "raw":
		if err := s.WaitConnected(ctx); err != nil {
			return err
		}
		return s.Raw(st.Data)
	case "sleep":
		t := time.NewTimer(st.Sleep)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	case "unplug":
		return s.Unplug()
	case "replug":
		return s.Replug()
	case "wait":
		return s.WaitConnected(ctx)
	}
	return fmt.Errorf("unknown step %q", st.Op)
}
