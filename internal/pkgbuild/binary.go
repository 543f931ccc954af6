package pkgbuild

import (
	"debug/buildinfo"
	"fmt"
	"strconv"
	"time"
)

// Binary is what a package takes from the agent binary's build information.
type Binary struct {
	Version string    // module version
	GOOS    string    // linux: the only system with these packages
	Arch    string    // Spec.Arch: GOARCH, with the GOARM level for arm
	Time    time.Time // VCS commit time, zero when not stamped
}

// ReadBinary reads the build information the go command stamped into the
// binary at path, so that a package's version and architecture are those
// of the binary it carries, not ones typed beside it.
func ReadBinary(path string) (Binary, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return Binary{}, fmt.Errorf("read build information of %s: %w", path, err)
	}
	b := Binary{Version: bi.Main.Version}
	var goarm string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			b.GOOS = s.Value
		case "GOARCH":
			b.Arch = s.Value
		case "GOARM":
			goarm = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				b.Time = t
			}
		}
	}
	if b.GOOS != "linux" {
		return Binary{}, fmt.Errorf("%s: built for GOOS %q; deb and rpm packages are for linux", path, b.GOOS)
	}
	if b.Arch == "arm" {
		// "7" or "7,softfloat": the level names nfpm's arm5/6/7.
		if len(goarm) == 0 || goarm[0] < '5' || goarm[0] > '7' {
			return Binary{}, fmt.Errorf("%s: GOARM %q is not 5, 6 or 7", path, goarm)
		}
		b.Arch += goarm[:1]
	}
	return b, nil
}

// MTime is the time of a package's files: SOURCE_DATE_EPOCH (Unix
// seconds) when set, else the binary's commit time; an error when there
// is neither, as the clock would make every build differ.
func MTime(sourceDateEpoch string, b Binary) (time.Time, error) {
	if sourceDateEpoch != "" {
		sec, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: not a count of seconds since 1970", sourceDateEpoch)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if b.Time.IsZero() {
		return time.Time{}, fmt.Errorf("no file time: the binary has no VCS commit time (build it with -buildvcs=true) and SOURCE_DATE_EPOCH is not set")
	}
	return b.Time.UTC(), nil
}
