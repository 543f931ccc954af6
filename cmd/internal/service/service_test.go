package service

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestActionFor(t *testing.T) {
	for code, want := range map[uint32]Action{
		1: Stop, 5: Stop, // STOP, SHUTDOWN: SIGTERM's job
		6: Reload, ReloadControl: Reload, // PARAMCHANGE and ours: SIGHUP's job
		4: Report,                                    // INTERROGATE
		2: Ignore, 3: Ignore, 129: Ignore, 0: Ignore, // PAUSE, CONTINUE: not accepted
	} {
		if got := ActionFor(code); got != want {
			t.Errorf("ActionFor(%d) = %v, want %v", code, got, want)
		}
	}
	if ReloadControl < 128 || ReloadControl > 255 {
		t.Errorf("ReloadControl %d is not a user-defined control code (128-255)", ReloadControl)
	}
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestPaths(t *testing.T) {
	if got := DataDir(env(map[string]string{"ProgramData": `D:\Data\`})); got != `D:\Data\posguard` {
		t.Errorf("DataDir = %q", got)
	}
	if got := DefaultConfig("windows", env(nil)); got != `C:\ProgramData\posguard\agent.yaml` {
		t.Errorf("DefaultConfig(windows, no ProgramData) = %q", got)
	}
	if got := DefaultConfig("linux", env(map[string]string{"ProgramData": `C:\x`})); got != "/etc/posguard/agent.yaml" {
		t.Errorf("DefaultConfig(linux) = %q", got)
	}
}

func TestParseArgs(t *testing.T) {
	abs := func(p string) (string, error) {
		if p == "bad" {
			return "", errors.New("no such drive")
		}
		if strings.HasPrefix(p, `C:\`) {
			return p, nil
		}
		return `C:\Windows\System32\` + p, nil
	}
	const def = `C:\ProgramData\posguard\agent.yaml`
	tests := []struct {
		args   []string
		config string
		want   Request
		err    string
	}{
		{[]string{"install"}, "", Request{Verb: Install, Config: def}, ""},
		{[]string{"install"}, "agent.yaml", Request{Verb: Install, Config: `C:\Windows\System32\agent.yaml`}, ""},
		{[]string{"install"}, "bad", Request{}, "--config bad: no such drive"},
		{[]string{"reload"}, "", Request{Verb: ReloadCmd}, ""},
		{[]string{"stop"}, "", Request{Verb: StopVerb}, ""},
		{[]string{"start"}, "x.yaml", Request{}, "--config is for install"},
		{nil, "", Request{}, "want a command"},
		{[]string{"restart"}, "", Request{}, `unknown command "restart"`},
		{[]string{"start", "now"}, "", Request{}, `unexpected argument "now" after start`},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.args, tt.config, def, abs)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseArgs(%q, %q) error %v, want %q", tt.args, tt.config, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseArgs(%q, %q) = %+v, %v; want %+v", tt.args, tt.config, got, err, tt.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	if got := strings.Join(CommandLine(`C:\ProgramData\posguard\agent.yaml`), " "); got != `agent --config C:\ProgramData\posguard\agent.yaml` {
		t.Errorf("CommandLine = %q", got)
	}
}

func TestEventType(t *testing.T) {
	for line, want := range map[string]int{
		`time=2026-11-29T22:00:00Z level=ERROR msg="hq: connect"`:      ErrorEvent,
		`time=2026-11-29T22:00:00Z level=WARN msg="key file readable"`: WarningEvent,
		`time=2026-11-29T22:00:00Z level=INFO msg="agent running"`:     InfoEvent,
		`time=2026-11-29T22:00:00Z level=INFO msg="level=ERROR"`:       InfoEvent,
	} {
		if got := EventType([]byte(line)); got != want {
			t.Errorf("EventType(%q) = %d, want %d", line, got, want)
		}
	}
}

// Off Windows the service commands say what does their job instead.
func TestNotWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has a service control manager")
	}
	if is, err := IsService(); is || err != nil {
		t.Errorf("IsService = %v, %v", is, err)
	}
	if err := Do(Request{Verb: Start}, "/x", nil); err == nil || !strings.Contains(err.Error(), "systemd") {
		t.Errorf("Do: %v", err)
	}
}
