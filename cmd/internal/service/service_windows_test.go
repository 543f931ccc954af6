//go:build windows

package service

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

// A console test process is no service.
func TestIsServiceFromConsole(t *testing.T) {
	if is, err := IsService(); is || err != nil {
		t.Errorf("IsService = %v, %v", is, err)
	}
}

// Execute is the service's life as the SCM drives it: running, reload on
// ParamChange and on ReloadControl, status on Interrogate, stop on Stop.
func TestExecute(t *testing.T) {
	elog, err := eventlog.Open(Name + "-test")
	if err != nil {
		t.Fatal(err)
	}
	defer elog.Close()
	reloads := make(chan struct{}, 4)
	h := &handler{log: &eventWriter{elog: elog}, agent: func(ctx context.Context, reload <-chan struct{}, log io.Writer) error {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-reload:
				reloads <- struct{}{}
			}
		}
	}}
	req := make(chan svc.ChangeRequest)
	status := make(chan svc.Status, 16)
	type result struct {
		specific bool
		code     uint32
	}
	done := make(chan result, 1)
	go func() {
		s, c := h.Execute(nil, req, status)
		done <- result{s, c}
	}()
	next := func(want svc.State) svc.Status {
		t.Helper()
		select {
		case s := <-status:
			if s.State != want {
				t.Fatalf("status %d, want %d", s.State, want)
			}
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("no status %d", want)
		}
		return svc.Status{}
	}
	next(svc.StartPending)
	running := next(svc.Running)
	if running.Accepts&svc.AcceptStop == 0 || running.Accepts&svc.AcceptParamChange == 0 {
		t.Errorf("accepts %b: want stop and paramchange", running.Accepts)
	}
	for _, c := range []svc.Cmd{svc.ParamChange, svc.Cmd(ReloadControl)} {
		req <- svc.ChangeRequest{Cmd: c}
		select {
		case <-reloads:
		case <-time.After(10 * time.Second):
			t.Fatalf("control %d: no reload", c)
		}
	}
	req <- svc.ChangeRequest{Cmd: svc.Interrogate, CurrentStatus: running}
	next(svc.Running)
	req <- svc.ChangeRequest{Cmd: svc.Stop}
	next(svc.StopPending)
	if r := <-done; r.specific || r.code != 0 {
		t.Errorf("clean stop exited %+v", r)
	}
}

// An agent that fails (a bad configuration) stops the service with a
// service-specific exit code, so the SCM's recovery restarts it.
func TestExecuteAgentFails(t *testing.T) {
	elog, err := eventlog.Open(Name + "-test")
	if err != nil {
		t.Fatal(err)
	}
	defer elog.Close()
	h := &handler{log: &eventWriter{elog: elog}, agent: func(context.Context, <-chan struct{}, io.Writer) error {
		return errors.New("config: open agent.yaml: The system cannot find the file specified.")
	}}
	status := make(chan svc.Status, 16)
	specific, code := h.Execute(nil, make(chan svc.ChangeRequest), status)
	if !specific || code != 1 {
		t.Errorf("Execute = %v, %d; want a service-specific exit code 1", specific, code)
	}
}

// The event writer takes each log line as one entry.
func TestEventWriter(t *testing.T) {
	elog, err := eventlog.Open(Name + "-test")
	if err != nil {
		t.Fatal(err)
	}
	defer elog.Close()
	w := &eventWriter{elog: elog}
	line := []byte("time=2026-11-29T22:00:00Z level=WARN msg=test\n")
	if n, err := w.Write(line); n != len(line) || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
}
