// Package version says which build of posguard is running: the module
// version and the VCS revision and time the go command stamps into every
// binary. Each posguard binary prints it for `version` and reports it in
// its status, so an operator can tell which build a register runs.
//
// The build date is never the wall clock of the build, so that two builds
// of one commit are byte for byte the same: it is SOURCE_DATE_EPOCH when
// the build stamped it (scripts/release.sh does, with
// -ldflags "-X github.com/posguard/posguard/internal/version.sourceDateEpoch=$SOURCE_DATE_EPOCH"),
// else the commit time the go command stamps (vcs.time, with -buildvcs).
package version

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"time"
)

// Devel is the version of a build the go command could not stamp (go run,
// go test, a build outside a module version or VCS checkout).
const Devel = "(devel)"

// sourceDateEpoch is SOURCE_DATE_EPOCH (Unix seconds) of a build that
// stamped it with -ldflags -X; empty for a plain go build.
var sourceDateEpoch string

// Info is what is known of a build.
type Info struct {
	Version  string    // module version, Devel when unknown
	Revision string    // VCS revision, empty when unknown
	Time     time.Time // commit time of Revision, zero when unknown
	Modified bool      // built from a work tree with uncommitted changes
	// Built is the build date: SOURCE_DATE_EPOCH if the build stamped
	// it, else Time; zero when neither is known.
	Built time.Time
}

// Read reads the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return from(bi, ok, sourceDateEpoch)
}

// From extracts Info from build information as debug.ReadBuildInfo returns
// it; ok false (no information) gives a Devel Info.
func From(bi *debug.BuildInfo, ok bool) Info { return from(bi, ok, "") }

// from is From with the SOURCE_DATE_EPOCH stamp of the build, if any.
func from(bi *debug.BuildInfo, ok bool, epoch string) Info {
	in := Info{Version: Devel}
	if ok && bi != nil {
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
	}
	in.Built = in.Time
	// A malformed stamp is as good as none: the commit time stands.
	if sec, err := strconv.ParseInt(epoch, 10, 64); err == nil && sec >= 0 {
		in.Built = time.Unix(sec, 0).UTC()
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
	if !in.Built.IsZero() {
		built = in.Built.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s %s\nrevision: %s\nbuilt: %s\n", name, in.Version, rev, built)
}
