package version

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	stamped := &debug.BuildInfo{Main: debug.Module{Path: "github.com/posguard/posguard", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-29T18:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		}}
	devel := &debug.BuildInfo{Main: debug.Module{Path: "github.com/posguard/posguard", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "not a time"},
			{Key: "vcs.modified", Value: "true"},
		}}
	tests := []struct {
		name        string
		bi          *debug.BuildInfo
		ok          bool
		epoch       string // SOURCE_DATE_EPOCH stamped by -ldflags -X
		short, text string
	}{
		{"release build", stamped, true, "", "v1.2.0",
			"posguard v1.2.0\nrevision: 0123456789abcdef0123456789abcdef01234567\nbuilt: 2026-11-29T18:00:00Z\n"},
		{"release build with SOURCE_DATE_EPOCH", stamped, true, "1700000000", "v1.2.0",
			"posguard v1.2.0\nrevision: 0123456789abcdef0123456789abcdef01234567\nbuilt: 2023-11-14T22:13:20Z\n"},
		{"malformed SOURCE_DATE_EPOCH: the commit time stands", stamped, true, "yesterday", "v1.2.0",
			"posguard v1.2.0\nrevision: 0123456789abcdef0123456789abcdef01234567\nbuilt: 2026-11-29T18:00:00Z\n"},
		{"devel build from a dirty tree, bad time stamp", devel, true, "", "(devel) 0123456789ab+dirty",
			"posguard (devel)\nrevision: 0123456789abcdef0123456789abcdef01234567 (modified)\nbuilt: unknown\n"},
		{"no VCS stamp, SOURCE_DATE_EPOCH only", &debug.BuildInfo{}, true, "0", "(devel)",
			"posguard (devel)\nrevision: unknown\nbuilt: 1970-01-01T00:00:00Z\n"},
		{"empty main version", &debug.BuildInfo{}, true, "", "(devel)", "posguard (devel)\nrevision: unknown\nbuilt: unknown\n"},
		{"no build information", nil, false, "", "(devel)", "posguard (devel)\nrevision: unknown\nbuilt: unknown\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := from(tt.bi, tt.ok, tt.epoch)
			if got := in.Short(); got != tt.short {
				t.Errorf("Short() = %q, want %q", got, tt.short)
			}
			if got := in.Text("posguard"); got != tt.text {
				t.Errorf("Text() = %q, want %q", got, tt.text)
			}
		})
	}
}
