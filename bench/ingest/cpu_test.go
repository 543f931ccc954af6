package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cpuMeter measures the CPU time a run costs: this process's (broker,
// HQ, publisher) and that of the PostgreSQL backends serving HQ's
// connections, found by an application name of their own. The machine is
// shared, so rates in events/s say little; CPU time per event does not
// depend on what else runs.
type cpuMeter struct {
	url      string // HQ's store URL, with the application name
	app      string
	proc     time.Duration
	backends map[int]time.Duration
}

// meteredURL gives the store URL an application name of its own.
func meteredURL(tb testing.TB, base string) (string, string) {
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	app := "posguard-bench-" + hex.EncodeToString(b[:])
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String(), app
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU reads the CPU time of each backend serving app (from
// /proc: the server is local); nil when that cannot be read.
func backendCPU(ctx context.Context, dbURL, app string) (map[int]time.Duration, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, app)
	if err != nil {
		return nil, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	out := map[int]time.Duration{}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, err
		}
		// Fields after the command (in parentheses, which may hold
		// spaces): utime and stime are the 12th and 13th, in ticks of
		// 1/100 s (USER_HZ).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/proc/%d/stat: %q %q", pid, f[11], f[12])
		}
		out[int(pid)] = time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out, nil
}

func (m *cpuMeter) start() {
	m.proc = processCPU()
	m.backends, _ = backendCPU(context.Background(), m.url, m.app)
}

// report adds cpu-µs/event (this process) and pg-cpu-µs/event (the
// backends; left out when they could not be read).
func (m *cpuMeter) report(b *testing.B, n int) {
	proc := processCPU() - m.proc
	b.ReportMetric(float64(proc.Microseconds())/float64(n), "cpu-µs/event")
	after, err := backendCPU(context.Background(), m.url, m.app)
	if err != nil || m.backends == nil {
		b.Logf("PostgreSQL backends' CPU not read: %v", err)
		return
	}
	var pg time.Duration
	for pid, t := range after {
		pg += t - m.backends[pid] // a backend opened since started at 0
	}
	b.ReportMetric(float64(pg.Microseconds())/float64(n), "pg-cpu-µs/event")
}
