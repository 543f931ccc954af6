package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Hashes of "secret": cost 10, and cost 4 (too cheap); $2y$ is what
// `htpasswd -B` writes.
const (
	hash10  = "$2a$10$nof.Yjds/RKisSvlCknWbepTWg39XGH/5tjejrHmSuupdoprXtf0G"
	hash10y = "$2y$10$nof.Yjds/RKisSvlCknWbepTWg39XGH/5tjejrHmSuupdoprXtf0G"
	hash4   = "$2a$04$WhQ4varkj/kIBvyM8JELSun9rTkAvcGHuoOMh7K4udGLK2L/Wq8iS"
)

func TestParsePasswords(t *testing.T) {
	tests := []struct {
		name, file string
		want       string // error substring; "" for valid
	}{
		{"every kind of identity", "hq:" + hash10 + "\nhq-push:" + hash10 + "\r\ndisplay/S001:" + hash10 + "\nbridge/S001:" + hash10 + "\nS001/R1:" + hash10y + "\n", ""},
		{"comments and blank lines", "# made by posguard demo\n\nhq:" + hash10 + "\n\n", ""},
		{"empty", "", "no identity in it"},
		{"only comments", "# nothing\n", "no identity in it"},
		{"no colon", "hq " + hash10, "line 1: want identity:bcrypt-hash"},
		{"cost below 10", "hq:" + hash4, "line 1 (hq): bcrypt cost 4 below the minimum 10"},
		{"mosquitto_passwd sha512-pbkdf2", "hq:$7$101$abc$def", "not a bcrypt hash"},
		{"plain text password", "hq:secret", "not a bcrypt hash"},
		{"truncated hash", "hq:" + hash10[:50], "too short"},
		{"trailing bytes", "hq:" + hash10 + "x", "want 60"},
		{"duplicate", "hq:" + hash10 + "\nhq:" + hash10, `line 2: identity "hq" listed twice`},
		{"unknown kind of identity", "admin:" + hash10, `identity "admin": want hq, hq-NAME, display/STORE, bridge/STORE or STORE/REG`},
		{"bridge of a bad store", "bridge/a b:" + hash10, "bridge identity"},
		{"bridge of no store", "bridge/:" + hash10, "bridge identity"},
		{"wildcard in a register", "S001/+:" + hash10, `register id "+"`},
		{"reserved store", "all/R1:" + hash10, `store id "all": reserved`},
		{"display of a bad store", "display/a b:" + hash10, "display identity"},
		{"empty identity", ":" + hash10, "want hq, hq-NAME"},
		{"too deep", "S001/R1/x:" + hash10, `register id "R1/x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePasswords([]byte(tt.file))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case tt.want == "" && p.Len() == 0:
				t.Fatal("no identities")
			}
		})
	}
}

func TestPasswordsCheck(t *testing.T) {
	p, err := ParsePasswords([]byte("hq:" + hash10 + "\nS001/R1:" + hash10y + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Few cases: a cost-10 check takes seconds under the race detector.
	for _, tt := range []struct {
		user, password string
		ok             bool
	}{
		{"S001/R1", "secret", true}, // a $2y$ hash from htpasswd -B
		{"hq", "Secret", false},
		{"S001/R2", "secret", false},
	} {
		if got := p.check(tt.user, []byte(tt.password)); got != tt.ok {
			t.Errorf("check(%q, %q) = %v, want %v", tt.user, tt.password, got, tt.ok)
		}
	}
	q, secret, err := p.WithSecret("hq-embedded")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 26 || !q.check("hq-embedded", []byte(secret)) || q.check("hq-embedded", []byte(secret+"x")) ||
		q.check("hq-embedded", nil) || p.check("hq-embedded", []byte(secret)) {
		t.Fatal("WithSecret must add a random secret to a copy only")
	}
	if _, _, err := p.WithSecret("hq"); err == nil {
		t.Fatal("WithSecret replaced an identity of the file")
	}
	if _, _, err := (*Passwords)(nil).WithSecret("nobody"); err == nil {
		t.Fatal("WithSecret for an identity the ACL does not know")
	}
}

func TestLoadPasswords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	os.WriteFile(path, []byte("display/S001:"+hash10+"\n"), 0o600)
	p, err := LoadPasswords(path)
	if err != nil || p.Len() != 1 {
		t.Fatalf("LoadPasswords: %v", err)
	}
	os.WriteFile(path, []byte("hq:"+hash4+"\n"), 0o600)
	if _, err := LoadPasswords(path); err == nil || !strings.Contains(err.Error(), path+": line 1 (hq): bcrypt cost 4") {
		t.Fatalf("cheap hash: %v", err)
	}
	if _, err := LoadPasswords(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file loaded")
	}
	if _, err := HashLine("nobody", "pw"); err == nil {
		t.Fatal("HashLine for an identity the ACL does not know")
	}
}

// FuzzParsePasswords: any file is parsed or refused with a reason, never
// a panic, and what is accepted holds only identities the ACL knows.
func FuzzParsePasswords(f *testing.F) {
	f.Add([]byte("hq:" + hash10 + "\nS001/R1:" + hash10y + "\n"))
	f.Add([]byte("hq:" + hash4))
	f.Add([]byte("# c\r\n\r\ndisplay/S001:" + hash10 + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePasswords(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for user, h := range p.hashes {
			if CheckIdentity(user) != nil || checkHash(string(h)) != nil {
				t.Fatalf("accepted %q:%q", user, h)
			}
		}
	})
}
