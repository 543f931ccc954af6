package token

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/posguard/posguard/internal/golden"
)

// emvSamples are consumer-presented QR payloads published in open-source
// EMV QR libraries' tests.
var emvSamples = []struct {
	name, source, text string
	last4              string
	atc                uint32
	hasATC             bool
	aid                string
}{
	{
		name:   "mvallim-track2",
		source: "mvallim/emv-qrcode src/test/java/com/emv/qrcode/decoder/cpm/DecoderCpmTest.java (encoded1); also kenmaz/JPQRReader JPQRReaderTests/CPMDecoderTests.swift",
		text:   "hQVDUFYwMWEaTwegAAAAVVVVVw8SNFZ4kBI0WNGRIgESNF8=",
		last4:  "3458", aid: "A0000000555555",
	},
	{
		name:   "mvallim-two-apps-common",
		source: "mvallim/emv-qrcode src/test/java/com/emv/qrcode/decoder/cpm/DecoderCpmTest.java (encoded2)",
		text:   "hQVDUFYwMWETTwegAAAAVVVVUAhQcm9kdWN0MWETTwegAAAAZmZmUAhQcm9kdWN0MmJJWggSNFZ4kBI0WF8gDkNBUkRIT0xERVIvRU1WXy0IcnVlc2RlZW5kIZ8QBwYBCgMAAACfJghYT9OF+iNLzJ82AgABnzcEbVjvEw==",
		last4:  "3458", atc: 1, hasATC: true, aid: "A0000000555555",
	},
	{
		name:   "unionpay-63-in-61",
		source: "chenkaishuaigege/Spring UnionpayV_1/src/test/java/InterfaceTest11_20.java (AdditionalProcessingResultTest, a UnionPay CPQRC client test)",
		text:   "hQVDUFYwMWFYTwigAAADMwEBAVcTYpJhA1hEQzVkHSIQIBAAABiAH180AQBjM58mCFaLEtnaC9l/nycBgJ8QEQcAAQOgAAABCDM5OTk5OTk5nzYCAAGCAgAAnzcE6gZYyA==",
		last4:  "5641", atc: 1, hasATC: true, aid: "A000000333010101",
	},
}

func TestEMVSamples(t *testing.T) {
	for _, s := range emvSamples {
		t.Run(s.name, func(t *testing.T) {
			tok, err := Decode([]byte(s.text))
			if err != nil {
				t.Fatalf("Decode (%s): %v", s.source, err)
			}
			if tok.Kind != KindEMV || tok.PANLast4 != s.last4 || tok.ATC != s.atc || tok.HasATC != s.hasATC || tok.AID != s.aid {
				t.Errorf("token %+v", tok)
			}
			got, err := json.MarshalIndent(tok.TLV, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "emv", s.name+".json"), append(got, '\n'))
			// Re-encoding the unredacted tree gives back the payload.
			raw, _ := base64.StdEncoding.DecodeString(s.text)
			tree, _ := ParseTLV(raw)
			again, err := EncodeTLV(tree)
			if err != nil || string(again) != string(raw) {
				t.Errorf("EncodeTLV(ParseTLV(x)) != x: %X", again)
			}
		})
	}
}

func TestEMVNeverShowsPAN(t *testing.T) {
	text, err := MintEMV(EMVSample{PAN: "4111111111111111", ATC: 7})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	tok, err := f.v.Verify([]byte(text), testNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := json.Marshal(struct {
		T   *Token
		TLV []TLV
	}{tok, tok.TLV})
	if strings.Contains(string(all), "411111111111") || !strings.Contains(string(all), "1111") {
		t.Errorf("PAN leaks or last 4 missing: %s", all)
	}
	if tok.PANLast4 != "1111" || len(tok.Account) != 32 {
		t.Errorf("token %+v", tok)
	}
}

func TestEMVReplayByATC(t *testing.T) {
	f := newFixture(t)
	l := newLedger()
	emv := func(pan string, atc uint16) []byte {
		s, err := MintEMV(EMVSample{PAN: pan, ATC: atc, Label: "Demo"})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(s)
	}
	steps := []struct {
		text []byte
		want Reason
	}{
		{emv("4111111111111111", 5), ""},
		{emv("4111111111111111", 5), ATCReplayed}, // same screenshot again
		{emv("4111111111111111", 4), ATCReplayed}, // older QR
		{emv("4111111111111111", 6), ""},
		{emv("5500000000000004", 1), ""}, // another card: its own counter
	}
	var accounts []string
	for i, st := range steps {
		tok, err := f.v.Verify(st.text, testNow, l)
		if ReasonOf(err) != st.want {
			t.Fatalf("step %d: %v, want %q", i, err, st.want)
		}
		if tok == nil || tok.Kind != KindEMV {
			t.Fatalf("step %d: token %+v", i, tok)
		}
		if err == nil {
			l.record(tok)
		}
		accounts = append(accounts, tok.Account)
	}
	if accounts[0] != accounts[3] || accounts[0] == accounts[4] {
		t.Errorf("account keys %v", accounts)
	}
	// The account key depends on the chain secret.
	other, _ := NewVerifier(f.tokens, []byte("other secret")).Verify(steps[0].text, testNow, nil)
	if other.Account == accounts[0] {
		t.Error("account key does not depend on the chain secret")
	}
	if p := PaymentFor(other, nil); p.Kind != "emv-cpm" || p.ATC != 5 || p.Account != other.Account {
		t.Errorf("payment %+v", p)
	}
}

func TestEMVWithoutATCReplayedByPayload(t *testing.T) {
	f := newFixture(t)
	l := newLedger()
	text := []byte(emvSamples[0].text)
	tok, err := f.v.Verify(text, testNow, l)
	if err != nil {
		t.Fatal(err)
	}
	l.record(tok)
	if _, err := f.v.Verify(text, testNow, l); ReasonOf(err) != Replayed {
		t.Fatalf("got %v, want replayed", err)
	}
}

func hexb(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'A') + 10
			}
		}
		b[i] = v
	}
	return b
}

func TestCPMRejects(t *testing.T) {
	const pfi = "85054350563031"
	tests := []struct {
		name, hex, want string
	}{
		{"duplicate tag in template", pfi + "61104F01014F01025A081234567890123458", "duplicate tag 4F"},
		{"duplicate ATC in nested 63", pfi + "61165A081234567890123458630A" + "9F360200019F36020002", "duplicate tag 9F36"},
		{"truncated length", pfi + "6182", "truncated length"},
		{"truncated value", pfi + "61055A03", "truncated value"},
		{"truncated 2-byte tag", pfi + "9F", "truncated tag"},
		{"trailing padding", pfi + "610A5A0812345678901234580000", "trailing bytes"},
		{"huge length", pfi + "6184FFFFFFFF5A", "length 4294967295"},
		{"five length bytes", pfi + "618500000000015A", "5 length bytes"},
		{"indefinite length", pfi + "61805A00", "indefinite"},
		{"missing 85", "610A5A081234567890123458", "85 = CPV01"},
		{"wrong version", "85054350563032610A5A081234567890123458", "85 = CPV01"},
		{"85 not first", "610A5A081234567890123458" + pfi, "85 = CPV01"},
		{"two 85", pfi + pfi + "610A5A081234567890123458", "twice"},
		{"no application template", pfi + "620A5A081234567890123458", "no application template"},
		{"no account", pfi + "61094F07A0000000041010", "neither a PAN"},
		{"PAN with letter", pfi + "610A5A0812345678901A3458", "not a digit"},
		{"short PAN", pfi + "61055A03123456", "6 digits"},
		{"track2 without separator", pfi + "610A57081234567890123458", "separator"},
		{"ATC of 3 bytes", pfi + "61105A0812345678901234589F3603000001", "ATC (9F36) is 3 bytes"},
		{"tag of 4 bytes", pfi + "9F8181010100", "longer than 3 bytes"},
		// 2ndsilencerz/fatalisa-public-api service/qris/cpm_parse_test.go: its
		// QRIS sample writes length 147 as the single byte 93, which BER reads
		// as "19 length bytes follow"; a strict parser must refuse it.
		{"QRIS sample with bad length", "", "19 length bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			if tc.hex == "" {
				var err error
				raw, err = base64.StdEncoding.DecodeString("hQVDUFYwMWGTTwegAAAGAiAgUAdxcmlzY3BtWgqTYAUDMSNFZ4mfXyALUmlraSBEZXJpYW5fLQRpZGVuX1AXcmlraS5kZXJpYW5AcXJpc2NwbS5jb22fJQJ4mWM/n3Q8MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw")
				if err != nil {
					t.Fatal(err)
				}
			} else {
				raw = hexb(t, tc.hex)
			}
			_, _, err := ParseCPM(raw)
			if ReasonOf(err) != Malformed || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseCPM(%s) = %v, want malformed mentioning %q", tc.hex, err, tc.want)
			}
			// Through the text path too: same verdict.
			f := NewVerifier(nil, nil)
			if _, err := f.Verify([]byte(base64.StdEncoding.EncodeToString(raw)), testNow, nil); ReasonOf(err) != Malformed && ReasonOf(err) != Unknown {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestTLVHugeLengthDoesNotAllocate(t *testing.T) {
	raw := hexb(t, "6184FFFFFFFF00")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := ParseTLV(raw); err == nil {
			t.Fatal("accepted a 4 GB length")
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("rejecting a huge length allocated %d bytes", d)
	}
}

func FuzzTLV(f *testing.F) {
	for _, s := range emvSamples {
		raw, _ := base64.StdEncoding.DecodeString(s.text)
		f.Add(raw)
	}
	f.Add([]byte{0x61, 0x84, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x9F})
	f.Fuzz(func(t *testing.T, raw []byte) {
		tree, err := ParseTLV(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		// Whatever parses re-encodes to a payload that parses the same.
		enc, err := EncodeTLV(tree)
		if err != nil {
			t.Fatalf("EncodeTLV: %v", err)
		}
		again, err := ParseTLV(enc)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		a, _ := json.Marshal(tree)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatalf("tree changed on re-encode:\n%s\n%s", a, b)
		}
		_, _, _ = ParseCPM(raw)
	})
}

func BenchmarkParseEMV(b *testing.B) {
	f := NewVerifier(nil, []byte("chain secret"))
	text := []byte(emvSamples[1].text)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Verify(text, testNow, nil); err != nil {
			b.Fatal(err)
		}
	}
}
