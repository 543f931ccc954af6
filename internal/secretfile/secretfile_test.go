package secretfile

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestExposed(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix modes")
	}
	dir := t.TempDir()
	for mode, exposed := range map[os.FileMode]bool{0o600: false, 0o400: false, 0o640: true, 0o604: true, 0o644: true} {
		path := filepath.Join(dir, mode.String())
		if err := os.WriteFile(path, []byte("s"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode) // past the umask
		got := Exposed(path)
		if (got != "") != exposed || exposed && !strings.Contains(got, "chmod 600") {
			t.Errorf("mode %v: %q", mode, got)
		}
	}
	if got := Exposed(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}
