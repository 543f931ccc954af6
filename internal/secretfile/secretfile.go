// Package secretfile tells whether a file holding a secret (a key, a token
// or password list) is open to others than its owner, so the programs that
// read one can say so.
package secretfile

import (
	"fmt"
	"os"
	"runtime"
)

// Exposed returns a sentence saying that path is readable or writable by
// group or others, with its mode, or "" when it is not (or cannot be
// stat'ed: reading it will report that).
func Exposed(path string) string {
	if runtime.GOOS == "windows" {
		// Go reports 0666 (0444 if read-only) for every Windows file:
		// ACLs, not modes, protect it there, and 'posguard-agent service
		// install' makes %ProgramData%\posguard readable by SYSTEM and the
		// Administrators only.
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Sprintf("%s is readable by group or others (mode %04o); chmod 600 it", path, perm)
	}
	return ""
}
