// Package service runs posguard-agent as a Windows service and manages its
// installation: install, uninstall, start, stop and reload through the
// service control manager, logging to the Windows event log.
//
// What does not need Windows lives in this file, so it is tested on every
// platform: the command line of "service", where a Windows register keeps
// its configuration and state, and which service control does what. The
// calls into the service control manager are in service_windows.go; on
// other systems they say that the systemd unit does their job.
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Name is the service's name in the service control manager and the
// event log's source; DisplayName and Description are what services.msc
// shows.
const (
	Name        = "posguard-agent"
	DisplayName = "posguard agent"
	Description = "Guards this register against fraudulent QR payments: decides payment tokens, syncs with HQ."
)

// ReloadControl is the user-defined service control code (128-255 are the
// service's own) that makes the agent re-read its configuration file, as
// SIGHUP does on Unix. PARAMCHANGE ("sc control posguard-agent
// paramchange") does the same.
const ReloadControl = 128

// Service control codes, as the SCM sends them (winsvc.h); kept here so
// ActionFor is tested without Windows.
const (
	controlStop        = 1
	controlInterrogate = 4
	controlShutdown    = 5
	controlParamChange = 6
)

// Action is what the agent does for a service control.
type Action int

const (
	// Ignore: the control is none the agent accepts.
	Ignore Action = iota
	// Report: tell the SCM the current status again (INTERROGATE).
	Report
	// Stop: finish the work in hand and exit (STOP, SHUTDOWN): SIGTERM's job.
	Stop
	// Reload: re-read the configuration file: SIGHUP's job.
	Reload
)

func (a Action) String() string {
	switch a {
	case Report:
		return "report"
	case Stop:
		return "stop"
	case Reload:
		return "reload"
	}
	return "ignore"
}

// ActionFor maps a service control code to what the agent does.
func ActionFor(code uint32) Action {
	switch code {
	case controlStop, controlShutdown:
		return Stop
	case controlParamChange, ReloadControl:
		return Reload
	case controlInterrogate:
		return Report
	}
	return Ignore
}

// DataDir is where a Windows register keeps posguard's configuration, keys
// and state: %ProgramData%\posguard (C:\ProgramData\posguard when the
// variable is unset, as in some service contexts).
func DataDir(getenv func(string) string) string {
	base := getenv("ProgramData")
	if base == "" {
		base = `C:\ProgramData`
	}
	return strings.TrimRight(base, `\`) + `\posguard`
}

// DefaultConfig is the agent's configuration file when --config is not
// given: /etc/posguard/agent.yaml, or agent.yaml in DataDir on Windows.
func DefaultConfig(goos string, getenv func(string) string) string {
	if goos == "windows" {
		return DataDir(getenv) + `\agent.yaml`
	}
	return "/etc/posguard/agent.yaml"
}

// Verb is a "service" subcommand.
type Verb string

const (
	Install   Verb = "install"
	Uninstall Verb = "uninstall"
	Start     Verb = "start"
	StopVerb  Verb = "stop"
	ReloadCmd Verb = "reload"
)

// Verbs are the "service" subcommands with what each does, in help order.
var Verbs = []struct {
	Verb  Verb
	About string
}{
	{Install, "register the service (automatic start, restart on failure) and its event log source"},
	{Uninstall, "stop and remove the service and its event log source"},
	{Start, "start the service"},
	{StopVerb, "stop the service and wait until it has stopped"},
	{ReloadCmd, "make the running service re-read its configuration file (SIGHUP's job on Unix)"},
}

// Request is a parsed "service" command line.
type Request struct {
	Verb Verb
	// Config is the configuration file the installed service runs with
	// (install only), made absolute: the SCM starts services in
	// C:\Windows\System32.
	Config string
}

// ParseArgs reads "VERB" with the --config of install already parsed into
// config ("" when not given: DefaultConfig). abs makes a path absolute
// (filepath.Abs on the platform that runs the service).
func ParseArgs(args []string, config string, defaultConfig string, abs func(string) (string, error)) (Request, error) {
	if len(args) == 0 {
		return Request{}, errors.New("want a command: install, uninstall, start, stop or reload")
	}
	if len(args) > 1 {
		return Request{}, fmt.Errorf("unexpected argument %q after %s", args[1], args[0])
	}
	r := Request{Verb: Verb(args[0])}
	known := false
	for _, v := range Verbs {
		known = known || v.Verb == r.Verb
	}
	if !known {
		return Request{}, fmt.Errorf("unknown command %q: want install, uninstall, start, stop or reload", args[0])
	}
	if config != "" && r.Verb != Install {
		return Request{}, fmt.Errorf("--config is for install; the installed service keeps the file it was installed with")
	}
	if r.Verb == Install {
		if config == "" {
			config = defaultConfig
		}
		a, err := abs(config)
		if err != nil {
			return Request{}, fmt.Errorf("--config %s: %w", config, err)
		}
		r.Config = a
	}
	return r, nil
}

// CommandLine is how the SCM starts the installed agent: the arguments
// after the executable.
func CommandLine(config string) []string {
	return []string{"agent", "--config", config}
}

// Agent runs the agent until ctx ends; a value on reload asks it to
// re-read its configuration; it logs text lines to log.
type Agent func(ctx context.Context, reload <-chan struct{}, log io.Writer) error

// Event log entry types for a log line.
const (
	InfoEvent = iota
	WarningEvent
	ErrorEvent
)

// EventType is the event log entry type for one line of the agent's text
// log (log/slog's TextHandler: "time=... level=WARN msg=...").
func EventType(line []byte) int {
	switch {
	case bytes.Contains(line, []byte(" level=ERROR")):
		return ErrorEvent
	case bytes.Contains(line, []byte(" level=WARN")):
		return WarningEvent
	}
	return InfoEvent
}
