package event

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
)

// AccountLabel is the ground truth about one payment account: one line of
// a labels file (JSON lines), what HQ's cases API exports at
// GET /v1/cases/labels and what `posguard policy test --labels` reads.
// Confirmed fraud cases give "fraud", cases closed as false positives
// give "legit".
type AccountLabel struct {
	// Account is the account key as events carry it
	// (request.payment.account).
	Account string `json:"account"`
	// Label is LabelFraud or LabelLegit.
	Label string `json:"label"`
	// Case is the id of the case that established the label, if any.
	Case string `json:"case,omitempty"`
	// At, when set, is the instant from which the label holds: for fraud,
	// when the account was taken over. Sales of the account before it are
	// not covered by this label (its owner may have made them).
	At time.Time `json:"at,omitzero"`
}

// Labels of AccountLabel (and Event.Label).
const (
	LabelFraud = "fraud"
	LabelLegit = "legit"
)

// Bounds of a labels line.
const (
	// MaxLabelLine is the longest labels line: an account key, a case id
	// and a time fit many times over.
	MaxLabelLine = 4 << 10
	// MaxLabelText bounds the account and case strings.
	MaxLabelText = 256
	// maxLabelProblems is how many bad lines ReadLabels lists before it
	// stops reading: a wrong file should not produce a million errors.
	maxLabelProblems = 20
)

// Validate checks the fields; the error says which one is wrong and why.
func (l AccountLabel) Validate() error {
	if err := labelText("account", l.Account, true); err != nil {
		return err
	}
	if l.Label != LabelFraud && l.Label != LabelLegit {
		return fmt.Errorf("label %q: want %s or %s", l.Label, LabelFraud, LabelLegit)
	}
	return labelText("case", l.Case, false)
}

func labelText(name, s string, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%s is required", name)
	case len(s) > MaxLabelText:
		return fmt.Errorf("%s is %d bytes, more than %d", name, len(s), MaxLabelText)
	case s != strings.TrimSpace(s):
		return fmt.Errorf("%s %q has leading or trailing white space", name, s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%s %q contains a control character", name, s)
	}
	return nil
}

// ParseAccountLabel decodes one labels line strictly: one JSON object,
// no unknown, misspelt or repeated member, valid UTF-8, `at` in RFC 3339,
// nothing after the object, and Validate.
func ParseAccountLabel(line []byte) (AccountLabel, error) {
	var l AccountLabel
	if len(line) > MaxLabelLine {
		return l, fmt.Errorf("%d bytes, more than %d", len(line), MaxLabelLine)
	}
	if !utf8.Valid(line) {
		return l, errors.New("not valid UTF-8")
	}
	// Unmarshal would take null for an empty object.
	if t := bytes.TrimLeft(line, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return l, errors.New("not a JSON object")
	}
	if err := jsonv2.Unmarshal(line, &l, jsonv2.RejectUnknownMembers(true)); err != nil {
		return AccountLabel{}, err
	}
	if err := l.Validate(); err != nil {
		return AccountLabel{}, err
	}
	return l, nil
}

// MarshalAccountLabel encodes l as one labels line, without the newline.
func MarshalAccountLabel(l AccountLabel) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("encode label of %q: %w", l.Account, err)
	}
	b, err := jsonv2.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode label of %q: %w", l.Account, err)
	}
	return b, nil
}

// LabelsError lists every problem ReadLabels found (up to 20), each with
// its line number.
type LabelsError struct {
	Problems []string
	// More counts the problems not listed.
	More int
}

func (e *LabelsError) Error() string {
	msg := strings.Join(e.Problems, "; ")
	if e.More > 0 {
		msg += fmt.Sprintf("; and %d more", e.More)
	}
	return msg
}

// ReadLabels reads a labels file: one AccountLabel per line, blank lines
// ignored. Ground truth decides what a backtest calls a mistake, so the
// whole file is refused when any line is wrong (unlike events, where a bad
// line is skipped): a bad line, or a second line for an account, is a
// *LabelsError naming every such line (up to 20).
func ReadLabels(r io.Reader) ([]AccountLabel, error) {
	br := bufio.NewReaderSize(r, MaxLabelLine+1)
	var (
		out   []AccountLabel
		first = map[string]int{} // account → its line
		lerr  LabelsError
	)
	problem := func(n int, format string, args ...any) {
		if len(lerr.Problems) < maxLabelProblems {
			lerr.Problems = append(lerr.Problems, fmt.Sprintf("line %d: ", n)+fmt.Sprintf(format, args...))
		} else {
			lerr.More++
		}
	}
	for n := 1; ; n++ {
		data, err := br.ReadSlice('\n')
		if len(data) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			long := len(data)
			for errors.Is(err, bufio.ErrBufferFull) {
				data, err = br.ReadSlice('\n')
				long += len(data)
			}
			if err == nil {
				long-- // the newline
			}
			problem(n, "%d bytes, more than %d", long, MaxLabelLine)
		} else if line := bytes.TrimSpace(data); len(line) > 0 {
			l, perr := ParseAccountLabel(line)
			switch prev, dup := first[l.Account]; {
			case perr != nil:
				problem(n, "%v", perr)
			case dup:
				problem(n, "account %q is labelled again (first on line %d): one line per account", l.Account, prev)
			default:
				first[l.Account] = n
				out = append(out, l)
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read labels line %d: %w", n, err)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if len(lerr.Problems) > 0 {
		return nil, &lerr
	}
	return out, nil
}
