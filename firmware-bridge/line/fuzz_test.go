package line

import (
	"bytes"
	"testing"
	"time"

	"github.com/posguard/posguard/firmware-bridge/scan"
)

// FuzzLineFramer feeds arbitrary bytes, split at an arbitrary point, to a
// framer: it must not panic, never hold more than a frame, never emit a
// frame longer than the limit or containing the suffix, and every frame it
// emits must come back unchanged when re-encoded and framed again.
func FuzzLineFramer(f *testing.F) {
	f.Add([]byte("4901234567894\r\n]Q1PG1:ABC\r\n"), uint8(5), true)
	f.Add([]byte("\r\n\r\n"), uint8(0), false)
	f.Add(bytes.Repeat([]byte("9"), 300), uint8(100), false)
	f.Fuzz(func(t *testing.T, in []byte, split uint8, withAIM bool) {
		fr := Framing{Suffix: Bytes("\r\n"), AIM: withAIM, MaxFrame: 128}
		var scans []scan.Scan
		framer := NewFramer(fr, func(s scan.Scan) { scans = append(scans, s) }, func(err error) {
			if err == nil || err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
		})
		cut := min(int(split), len(in))
		framer.Feed(in[:cut], time.Time{})
		framer.Feed(in[cut:], time.Time{})
		if framer.Buffered() > 128+3+2*len(fr.Suffix) {
			t.Fatalf("buffered %d bytes", framer.Buffered())
		}
		for _, s := range scans {
			if len(s.Data) == 0 || len(s.Data) > 128 || bytes.Contains(s.Data, fr.Suffix) {
				t.Fatalf("bad frame %q", s.Data)
			}
			var again []scan.Scan
			NewFramer(fr, func(s scan.Scan) { again = append(again, s) }, nil).Feed(fr.Append(nil, s), time.Time{})
			if len(again) != 1 || !bytes.Equal(again[0].Data, s.Data) {
				t.Fatalf("frame %q re-framed as %v", s.Data, again)
			}
		}
	})
}

// FuzzParseBytes: any configuration string is accepted or rejected with a
// reason, and what is accepted prints back to the same bytes.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"CRLF", "0x0d0a", `\x02ab\r`, "hex:", "NONE", `\u00e9`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBytes(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		back, err := ParseBytes(b.String())
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%q parsed to %q, printed %q, parsed back %q, %v", s, b, b.String(), back, err)
		}
	})
}
