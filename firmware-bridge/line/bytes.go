package line

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bytes is a byte string written in configuration the way scanner manuals
// name it: a control-character name (CR, LF, CRLF, TAB, STX, ETX, NONE),
// hex ("0x0d0a" or "hex:0d0a"), or text with Go escapes ("\r\n", "\x02").
type Bytes []byte

var named = map[string]Bytes{
	"NONE": {},
	"CR":   {'\r'},
	"LF":   {'\n'},
	"CRLF": {'\r', '\n'},
	"TAB":  {'\t'},
	"STX":  {0x02},
	"ETX":  {0x03},
	"EOT":  {0x04},
	"ESC":  {0x1b},
	"BEL":  {0x07},
}

// ParseBytes reads a byte string in any of the forms Bytes accepts.
func ParseBytes(s string) (Bytes, error) {
	if b, ok := named[strings.ToUpper(s)]; ok {
		return append(Bytes{}, b...), nil
	}
	lower := strings.ToLower(s)
	for _, p := range []string{"0x", "hex:"} {
		if h, ok := strings.CutPrefix(lower, p); ok {
			b, err := hex.DecodeString(h)
			if err != nil {
				return nil, fmt.Errorf("bad hex byte string %q: %w", s, err)
			}
			return b, nil
		}
	}
	if strings.Contains(s, `"`) {
		return nil, fmt.Errorf("byte string %q: quotes are not allowed, write \\x22", s)
	}
	u, err := strconv.Unquote(`"` + s + `"`)
	if err != nil {
		return nil, fmt.Errorf("byte string %q: not a name (CR, LF, CRLF, TAB, STX, ETX, NONE), hex (0x..) or escaped text: %w", s, err)
	}
	return Bytes(u), nil
}

// String renders b in the form ParseBytes reads back: a name when there is
// one, escaped text otherwise.
func (b Bytes) String() string {
	for _, n := range []string{"CR", "LF", "CRLF", "TAB", "STX", "ETX"} {
		if string(named[n]) == string(b) {
			return n
		}
	}
	if len(b) == 0 {
		return "NONE"
	}
	q := strconv.Quote(string(b))
	// ParseBytes refuses quotes (a YAML or shell quote closes the string
	// early): print them the one way it reads back. Quote escapes every
	// quote as \" and every backslash as \\, so \" only ever stands for a
	// quote here.
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `\x22`)
}

// Set implements flag.Value so commands take byte strings as flags.
func (b *Bytes) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: byte string must be a string: %w", n.Line, err)
	}
	v, err := ParseBytes(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b Bytes) MarshalYAML() (any, error) { return b.String(), nil }
