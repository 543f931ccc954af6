//go:build windows

package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// IsService reports whether the service control manager started this
// process.
func IsService() (bool, error) {
	return svc.IsWindowsService()
}

// Run runs agent as the service Name, logging to the event log, until the
// SCM stops it or agent returns. The working directory becomes dir (the
// configuration file's), so relative paths in the file mean what they mean
// to 'posguard-agent agent --check' run there.
func Run(dir string, agent Agent) error {
	elog, err := eventlog.Open(Name)
	if err != nil {
		return fmt.Errorf("open event log source %s: %w", Name, err)
	}
	defer elog.Close()
	w := &eventWriter{elog: elog}
	if err := os.Chdir(dir); err != nil {
		elog.Error(1, fmt.Sprintf("%s: %v", Name, err))
		return err
	}
	return svc.Run(Name, &handler{agent: agent, log: w})
}

type handler struct {
	agent Agent
	log   *eventWriter
}

// Execute is the service's life: start the agent, map controls to its
// actions (stop, reload), report the states the SCM wants to see.
func (h *handler) Execute(_ []string, r <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	const accepts = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptParamChange
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- h.agent(ctx, reload, h.log) }()
	status <- svc.Status{State: svc.Running, Accepts: accepts}
	exit := func(err error) (bool, uint32) {
		if err != nil && !errors.Is(err, context.Canceled) {
			h.log.elog.Error(1, fmt.Sprintf("%s stopped: %v", Name, err))
			// A service-specific exit code: the SCM's recovery
			// actions restart the agent.
			return true, 1
		}
		return false, 0
	}
	for {
		select {
		case err := <-done:
			status <- svc.Status{State: svc.StopPending}
			return exit(err)
		case c := <-r:
			switch ActionFor(uint32(c.Cmd)) {
			case Report:
				status <- c.CurrentStatus
			case Stop:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				return exit(<-done)
			case Reload:
				select {
				case reload <- struct{}{}:
				default: // one pending reload reads the newest file anyway
				}
			}
		}
	}
}

// eventWriter writes each log line (log/slog's TextHandler writes a record
// in one Write) as an event log entry of its level.
type eventWriter struct {
	elog *eventlog.Log
}

func (w *eventWriter) Write(p []byte) (int, error) {
	msg := string(p)
	var err error
	switch EventType(p) {
	case ErrorEvent:
		err = w.elog.Error(3, msg)
	case WarningEvent:
		err = w.elog.Warning(2, msg)
	default:
		err = w.elog.Info(1, msg)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Do carries out r with the service control manager; exe is the
// executable the installed service runs.
func Do(r Request, exe string, out io.Writer) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service control manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	if r.Verb == Install {
		return install(m, exe, r.Config, out)
	}
	s, err := m.OpenService(Name)
	if err != nil {
		return fmt.Errorf("open service %s (installed?): %w", Name, err)
	}
	defer s.Close()
	switch r.Verb {
	case Uninstall:
		if st, err := s.Query(); err == nil && st.State != svc.Stopped {
			if err := stop(s); err != nil {
				return err
			}
		}
		if err := s.Delete(); err != nil {
			return fmt.Errorf("delete service %s: %w", Name, err)
		}
		if err := eventlog.Remove(Name); err != nil {
			return fmt.Errorf("remove event log source %s: %w", Name, err)
		}
		fmt.Fprintf(out, "service %s removed (configuration and state in %s kept)\n", Name, DataDir(os.Getenv))
	case Start:
		if err := s.Start(); err != nil {
			return fmt.Errorf("start service %s: %w", Name, err)
		}
		fmt.Fprintf(out, "service %s started\n", Name)
	case StopVerb:
		if err := stop(s); err != nil {
			return err
		}
		fmt.Fprintf(out, "service %s stopped\n", Name)
	case ReloadCmd:
		if _, err := s.Control(svc.Cmd(ReloadControl)); err != nil {
			return fmt.Errorf("reload service %s: %w", Name, err)
		}
		fmt.Fprintf(out, "service %s asked to re-read its configuration (see the event log)\n", Name)
	}
	return nil
}

func install(m *mgr.Mgr, exe, config string, out io.Writer) error {
	if s, err := m.OpenService(Name); err == nil {
		s.Close()
		return fmt.Errorf("service %s is already installed; uninstall it first", Name)
	}
	if err := makeDataDir(DataDir(os.Getenv)); err != nil {
		return err
	}
	s, err := m.CreateService(Name, exe, mgr.Config{
		DisplayName:      DisplayName,
		Description:      Description,
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: false,
	}, CommandLine(config)...)
	if err != nil {
		return fmt.Errorf("create service %s: %w", Name, err)
	}
	defer s.Close()
	// Restart after a crash or a failed start, as systemd's
	// Restart=on-failure does on Linux; the count resets after a day.
	restart := mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: 5 * time.Second}
	if err := s.SetRecoveryActions([]mgr.RecoveryAction{restart, restart, restart}, 24*60*60); err != nil {
		s.Delete()
		return fmt.Errorf("set recovery actions of %s: %w", Name, err)
	}
	if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		s.Delete()
		return fmt.Errorf("install event log source %s: %w", Name, err)
	}
	fmt.Fprintf(out, "service %s installed: %s %s\nput its configuration in %s, then: posguard-agent service start\n",
		Name, exe, windows.ComposeCommandLine(CommandLine(config)), config)
	return nil
}

// makeDataDir creates dir, if missing, readable only by SYSTEM and the
// Administrators: it holds the state file and the account hashing key.
func makeDataDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString("D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")
	if err != nil {
		return fmt.Errorf("restrict %s: %w", dir, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("restrict %s: %w", dir, err)
	}
	if err := windows.SetNamedSecurityInfo(filepath.Clean(dir), windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("restrict %s: %w", dir, err)
	}
	return nil
}

// stop asks the service to stop and waits until it has.
func stop(s *mgr.Service) error {
	st, err := s.Control(svc.Stop)
	if err != nil {
		return fmt.Errorf("stop service %s: %w", Name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("stop service %s: still %d after 30s", Name, st.State)
		}
		time.Sleep(300 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return fmt.Errorf("query service %s: %w", Name, err)
		}
	}
	return nil
}
