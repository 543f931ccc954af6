package apiauth

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/posguard/posguard/internal/brokertest"
)

const sum = "sha256:" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string // want: "" for a valid file, else a part of the error
	}{
		{"token and cert", "# HQ API callers\nops admin " + sum + "\n\ndash read cert\n", ""},
		{"same name as token and cert", "ops admin " + sum + "\nops read cert\n", ""},
		{"empty", "# nothing\n", "no entries"},
		{"two fields", "ops admin\n", "line 1: want NAME ROLE"},
		{"bad role", "ops root " + sum + "\n", `line 1: role "root": want read, analyst or admin`},
		{"short hash", "ops read sha256:abcd\n", "line 1: sha256:abcd: want 64 hex digits"},
		{"not hex", "ops read sha256:" + strings.Repeat("zz", 32) + "\n", "want 64 hex digits"},
		{"token pasted", "ops read pgt_c2VjcmV0c2VjcmV0c2VjcmV0\n", `credential "pgt_…": want sha256:HEX or cert`},
		{"long name", strings.Repeat("n", 65) + " read cert\n", "want 1 to 64 characters"},
		{"control in name", "o\x01ps read cert\n", "not visible ASCII"},
		{"duplicate", "ops read cert\n\nops admin cert\n", `line 3: "ops" is already named on line 1`},
		{"every problem", "a b c\nd read cert\ne\n", "line 1: role \"b\"…line 3: want NAME ROLE"},
		{"too big", strings.Repeat("# padding\n", 120_000), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(strings.NewReader(tt.in))
			if tt.want == "" {
				if err != nil || tok == nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.in)
			}
			for _, part := range strings.Split(tt.want, "…") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q, want it to contain %q", err, part)
				}
			}
		})
	}
}

func TestTokenAuthentication(t *testing.T) {
	admin, adminLine, err := NewToken("fraud-desk", Admin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(admin, TokenPrefix) || strings.Contains(adminLine, admin) {
		t.Fatalf("token %q, line %q: the file must hold only the hash", admin, adminLine)
	}
	reader, readerLine, _ := NewToken("dashboard", Read)
	toks, err := Parse(strings.NewReader(adminLine + "\n" + readerLine + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := func(need Role) http.Handler {
		return Require(toks, need, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := Caller(r)
			io.WriteString(w, p.String())
		}))
	}
	tests := []struct {
		name, auth string
		need       Role
		code       int
		body       string
	}{
		{"admin reads", "Bearer " + admin, Read, 200, "fraud-desk (token)"},
		{"admin changes", "Bearer " + admin, Admin, 200, "fraud-desk (token)"},
		{"reader reads", "Bearer " + reader, Read, 200, "dashboard (token)"},
		{"reader changes", "Bearer " + reader, Admin, 403, "dashboard (token) has role read; this needs admin"},
		{"nothing", "", Read, 401, "authentication required"},
		{"basic auth", "Basic b3BzOm9wcw==", Read, 401, "want Bearer TOKEN"},
		{"unknown token", "Bearer " + admin + "x", Read, 401, "unknown API token"},
		{"a hash is not a token", "Bearer " + strings.Fields(adminLine)[2], Read, 401, "unknown API token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/events", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h(tt.need).ServeHTTP(w, r)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("%d %q, want %d containing %q", w.Code, w.Body, tt.code, tt.body)
			}
			if tt.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// A client certificate named in the file authenticates over a real TLS
// connection; one the file does not name, or none, does not.
func TestClientCertificate(t *testing.T) {
	pki := brokertest.NewPKI(t, t.TempDir(), "hq-console")
	toks, err := Parse(strings.NewReader("hq-console admin cert\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Require(toks, Admin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := Caller(r)
		io.WriteString(w, p.String())
	})))
	srv.TLS = &tls.Config{ClientCAs: pki.CAPool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()
	for _, tt := range []struct {
		name string
		cn   string // "" for no certificate
		code int
		body string
	}{
		{"named certificate", "hq-console", 200, "hq-console (cert)"},
		{"unnamed certificate", "intruder", 401, `is not in the tokens file`},
		{"no certificate", "", 401, "authentication required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			if tt.cn != "" {
				tr.TLSClientConfig.Certificates = []tls.Certificate{pki.Client(t, tt.cn)}
			}
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.body) {
				t.Errorf("%d %q, want %d containing %q", resp.StatusCode, b, tt.code, tt.body)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("ops admin " + sum + "\n")
	f.Add("dash read cert\n")
	f.Fuzz(func(t *testing.T, in string) {
		toks, err := Parse(strings.NewReader(in))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		if len(toks.entries) == 0 {
			t.Fatal("accepted a file with no entries")
		}
		for _, e := range toks.entries {
			if CheckName(e.name) != nil || !e.role.Valid() {
				t.Fatalf("accepted entry %+v", e)
			}
		}
	})
}
