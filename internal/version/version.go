// Package version says which build of posguard is running: the module
// version and the VCS revision and time the go command stamps into every
// binary. Each posguard binary prints it for `version` and reports it in
// its status, so an operator can tell which build a register runs.
package version

import (
	"fmt"
	"runtime/debug"
	"time"
)

// Devel is the version of a build the go command could not stamp (go run,
// go test, a build outside a module version or VCS checkout).
const Devel = "(devel)"

// Info is what is known of a build.
type Info struct {
	Version  string    // module version, Devel when unknown
	Revision string    // VCS revision, empty when unknown
	Time     time.Time // commit time of Revision, zero when unknown
	Modified bool      // built from a work tree with uncommitted changes
}

// Read reads the running binary's build information.
func Read() Info { return From(debug.ReadBuildInfo()) }

// From extracts Info from build information as debug.ReadBuildInfo returns
// it; ok false (no information) gives a Devel Info.
func From(bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: Devel}
	if !ok || bi == nil {
		return in
	}
	if v := bi.Main.Version; v != "" {
		in.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			// A malformed stamp is as good as none: leave Time zero.
			in.Time, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// Short is the version with, for a Devel build, the revision that tells
// builds apart: "v1.2.0", "(devel) 0123456789ab", "(devel) 0123456789ab+dirty".
func (in Info) Short() string {
	if in.Version != Devel || in.Revision == "" {
		return in.Version
	}
	rev := in.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if in.Modified {
		rev += "+dirty"
	}
	return in.Version + " " + rev
}

// Text is the multi-line report of `posguard version`, name first.
func (in Info) Text(name string) string {
	rev, built := "unknown", "unknown"
	if in.Revision != "" {
		rev = in.Revision
		if in.Modified {
			rev += " (modified)"
		}
	}
	if !in.Time.IsZero() {
		built = in.Time.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s %s\nrevision: %s\nbuilt: %s\n", name, in.Version, rev, built)
}
