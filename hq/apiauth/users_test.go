package apiauth

import (
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// hashes are bcrypt hashes at MinCost of "NAME-password", made once: each
// costs tens of milliseconds, more under the race detector.
var hashes = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, n := range []string{"sato", "tanaka", "suzuki"} {
		h, err := bcrypt.GenerateFromPassword([]byte(n+"-password"), MinCost)
		if err != nil {
			panic(err)
		}
		out[n] = string(h)
	}
	return out
})

func TestParseUsers(t *testing.T) {
	h := hashes()
	low, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	tests := []struct {
		name, in, want string // want: "" for a valid file, else parts of the error, "…" between
	}{
		{"three roles", "# console\nsato analyst " + h["sato"] + "\n\ntanaka viewer " + h["tanaka"] + "\nsuzuki admin " + h["suzuki"] + "\n", ""},
		{"empty", "# nobody yet\n", "no users: add one with 'posguard hq-user'"},
		{"two fields", "sato analyst\n", "line 1: want NAME ROLE BCRYPT-HASH, got 2 fields"},
		{"API role name", "sato read " + h["sato"] + "\n", `line 1: role "read": want viewer, analyst or admin`},
		{"bad role", "sato root " + h["sato"] + "\n", `line 1: role "root": want viewer, analyst or admin`},
		{"password in clear", "sato admin hunter2hunter2\n", `line 1: password hash "hunt…": not a bcrypt hash`},
		{"cheap hash", "sato admin " + string(low) + "\n", "line 1: password hash: bcrypt cost 4, want 10 or more"},
		{"long name", strings.Repeat("n", 65) + " viewer " + h["sato"] + "\n", "line 1: name"},
		{"control in name", "s\x01to viewer " + h["sato"] + "\n", "line 1: name"},
		{"duplicate", "sato viewer " + h["sato"] + "\n# again\nsato admin " + h["sato"] + "\n", `line 3: user "sato" is already on line 1`},
		{"every problem", "a b c\nsato viewer " + h["sato"] + "\nx\n", `line 1: role "b"…line 3: want NAME ROLE`},
		{"too big", strings.Repeat("# padding\n", 120_000), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUsers(strings.NewReader(tt.in))
			if tt.want == "" {
				if err != nil || u.Len() != 3 {
					t.Fatalf("ParseUsers: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseUsers accepted %q", tt.in)
			}
			for _, part := range strings.Split(tt.want, "…") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q, want it to contain %q", err, part)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q repeats a password", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	h := hashes()
	u, err := ParseUsers(strings.NewReader("sato analyst " + h["sato"] + "\ntanaka viewer " + h["tanaka"] + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := u.Check("sato", "sato-password"); err != nil || got.Role != Analyst || got.Name != "sato" {
		t.Fatalf("right password: %+v %v", got, err)
	}
	if got, err := u.Check("tanaka", "tanaka-password"); err != nil || got.Role != Read {
		t.Fatalf("viewer: %+v %v", got, err)
	}
	for _, c := range [][2]string{{"sato", "tanaka-password"}, {"sato", ""}, {"nobody", "sato-password"}, {"", ""}} {
		if _, err := u.Check(c[0], c[1]); err != ErrWrongLogin {
			t.Errorf("Check(%q, %q) = %v, want ErrWrongLogin", c[0], c[1], err)
		}
	}
}

func TestUserLineAndReplace(t *testing.T) {
	line, err := UserLine("sato", AnalystUser, "sato-password", MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "sato analyst $2a$10$") || strings.Contains(line, "sato-password") {
		t.Fatalf("line %q", line)
	}
	for _, c := range []struct {
		name, role, pw string
		cost           int
		want           string
	}{
		{"sato", "root", "pw", MinCost, `role "root"`},
		{"", "viewer", "pw", MinCost, "name"},
		{"sato", "viewer", "", MinCost, "empty password"},
		{"sato", "viewer", strings.Repeat("p", 73), MinCost, "longer than 72"},
		{"sato", "viewer", "pw", 9, "bcrypt cost 9"},
	} {
		if _, err := UserLine(c.name, UserRole(c.role), c.pw, c.cost); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("UserLine(%q, %q, cost %d) = %v, want %q", c.name, c.role, c.cost, err, c.want)
		}
	}

	h := hashes()
	old := "# HQ console users\ntanaka viewer " + h["tanaka"] + "\nsato viewer " + h["sato"] + "\n"
	text, err := ReplaceUser(old, "sato", line)
	if err != nil {
		t.Fatal(err)
	}
	want := "# HQ console users\ntanaka viewer " + h["tanaka"] + "\n" + line + "\n"
	if text != want {
		t.Fatalf("replaced:\n%s\nwant:\n%s", text, want)
	}
	added, err := ReplaceUser(strings.TrimSuffix(old, "\n"), "suzuki", "suzuki admin "+h["suzuki"])
	if err != nil || !strings.HasSuffix(added, "sato viewer "+h["sato"]+"\nsuzuki admin "+h["suzuki"]+"\n") {
		t.Fatalf("added: %q %v", added, err)
	}
	if _, err := ReplaceUser("broken line\n", "sato", line); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a broken file is not rewritten: %v", err)
	}
}

func FuzzParseUsers(f *testing.F) {
	f.Add("sato analyst $2a$10$nof.Yjds/RKisSvlCknWbepTWg39XGH/5tjejrHmSuupdoprXtf0G\n")
	f.Add("# only a comment\n")
	f.Fuzz(func(t *testing.T, in string) {
		u, err := ParseUsers(strings.NewReader(in))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		if u.Len() == 0 {
			t.Fatal("accepted a file with no users")
		}
		for name, usr := range u.byName {
			cost, err := bcrypt.Cost(usr.hash)
			if CheckName(name) != nil || !usr.Role.Valid() || err != nil || cost < MinCost {
				t.Fatalf("accepted user %q %+v (cost %d, %v)", name, usr, cost, err)
			}
		}
	})
}
