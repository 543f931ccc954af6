package apiauth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// UserRole is a console user's role as the users file names it; each maps
// to the API role its sessions call with (RoleOf).
type UserRole string

const (
	Viewer      UserRole = "viewer"  // reads every page
	AnalystUser UserRole = "analyst" // also works cases and changes the lists
	AdminUser   UserRole = "admin"   // also pushes policies and manages users
)

// RoleOf is the API role of a console user role.
func RoleOf(u UserRole) (Role, bool) {
	switch u {
	case Viewer:
		return Read, true
	case AnalystUser:
		return Analyst, true
	case AdminUser:
		return Admin, true
	}
	return "", false
}

// UserRoleOf is the console name of an API role ("viewer" for read).
func UserRoleOf(r Role) UserRole {
	if r == Read {
		return Viewer
	}
	return UserRole(r)
}

// MinCost is the least bcrypt cost the users file accepts: a stolen file
// must not give up passwords at millions of guesses a second.
const MinCost = 10

// DefaultCost is the cost 'posguard hq-user' hashes with.
const DefaultCost = 12

const maxPasswordLen = 72 // bcrypt's limit; longer ones are refused, not cut

// User is one line of the users file.
type User struct {
	Name string
	Role Role
	hash []byte
}

// Users is a parsed users file.
type Users struct {
	byName map[string]User
	// dummy is compared for unknown names, so a login's timing does not
	// say whether the name exists; made at the file's highest cost on
	// the first such login.
	dummyCost int
	dummyOnce sync.Once
	dummy     []byte
}

// LoadUsers reads a users file.
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("console users: %w", err)
	}
	defer f.Close()
	u, err := ParseUsers(f)
	if err != nil {
		return nil, fmt.Errorf("console users %s: %w", path, err)
	}
	return u, nil
}

// ParseUsers reads the users file format, one user a line:
//
//	# comment
//	NAME ROLE BCRYPT-HASH
//
// NAME is 1..64 bytes of visible ASCII, ROLE viewer, analyst or admin, the
// hash bcrypt's ($2a$/$2b$/$2y$) with a cost of MinCost or more. Every
// problem is reported with its line number.
func ParseUsers(r io.Reader) (*Users, error) {
	u := &Users{byName: map[string]User{}, dummyCost: MinCost}
	seen := map[string]int{}
	err := eachLine(r, func(n int, line string) error {
		usr, cost, err := parseUserLine(line)
		if err != nil {
			return err
		}
		if first, dup := seen[usr.Name]; dup {
			return fmt.Errorf("user %q is already on line %d", usr.Name, first)
		}
		seen[usr.Name] = n
		u.byName[usr.Name] = usr
		u.dummyCost = max(u.dummyCost, cost)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(u.byName) == 0 {
		return nil, errors.New("no users: add one with 'posguard hq-user'")
	}
	return u, nil
}

func parseUserLine(line string) (User, int, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return User{}, 0, fmt.Errorf("want NAME ROLE BCRYPT-HASH, got %d fields", len(f))
	}
	if err := CheckName(f[0]); err != nil {
		return User{}, 0, err
	}
	role, ok := RoleOf(UserRole(f[1]))
	if !ok {
		return User{}, 0, fmt.Errorf("role %q: want viewer, analyst or admin", f[1])
	}
	cost, err := bcrypt.Cost([]byte(f[2]))
	if err != nil {
		return User{}, 0, fmt.Errorf("password hash %q: not a bcrypt hash (make the line with 'posguard hq-user'): %v", redact(f[2]), err)
	}
	if cost < MinCost {
		return User{}, 0, fmt.Errorf("password hash: bcrypt cost %d, want %d or more", cost, MinCost)
	}
	return User{Name: f[0], Role: role, hash: []byte(f[2])}, cost, nil
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.byName) }

// Lookup finds a user by name.
func (u *Users) Lookup(name string) (User, bool) {
	usr, ok := u.byName[name]
	return usr, ok
}

// ErrWrongLogin is a login with an unknown name or a wrong password; which
// of the two is not said.
var ErrWrongLogin = errors.New("unknown user or wrong password")

// Check returns the user name and password identify. It costs one bcrypt
// comparison whether or not the name exists.
func (u *Users) Check(name, password string) (User, error) {
	usr, ok := u.byName[name]
	hash := usr.hash
	if !ok {
		u.dummyOnce.Do(func() {
			// Never fails for a cost in range and a short password.
			u.dummy, _ = bcrypt.GenerateFromPassword([]byte("posguard-no-such-user"), u.dummyCost)
		})
		hash = u.dummy
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if !ok || err != nil {
		return User{}, ErrWrongLogin
	}
	return usr, nil
}

// UserLine makes the users file line of name with role and password,
// hashed at cost (DefaultCost when 0).
func UserLine(name string, role UserRole, password string, cost int) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	if _, ok := RoleOf(role); !ok {
		return "", fmt.Errorf("role %q: want viewer, analyst or admin", role)
	}
	if password == "" {
		return "", errors.New("empty password")
	}
	if len(password) > maxPasswordLen {
		return "", fmt.Errorf("password longer than %d bytes (bcrypt's limit)", maxPasswordLen)
	}
	if cost == 0 {
		cost = DefaultCost
	}
	if cost < MinCost {
		return "", fmt.Errorf("bcrypt cost %d, want %d or more", cost, MinCost)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return fmt.Sprintf("%s %s %s", name, role, hash), nil
}

// ReplaceUser returns the users file text old with name's line replaced by
// line, or line appended when name has none; comments and other users
// stay as they are. The result is checked by ParseUsers.
func ReplaceUser(old, name, line string) (string, error) {
	var out []string
	replaced := false
	for _, l := range strings.SplitAfter(old, "\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == name && !strings.HasPrefix(f[0], "#") {
			if !replaced {
				out = append(out, line+"\n")
				replaced = true
			}
			continue
		}
		if !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		out = append(out, l)
	}
	if !replaced {
		out = append(out, line+"\n")
	}
	text := strings.Join(out, "")
	if _, err := ParseUsers(strings.NewReader(text)); err != nil {
		return "", err
	}
	return text, nil
}
