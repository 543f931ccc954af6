package hq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/backtest"
)

// PolicyReportConfig bounds the backtest report of a policy version
// (GET /v1/policies/{version}/report): the decisions HQ stored within
// Window before the report starts, at most MaxEvents of them (from the
// window's start: a busier window is cut short), replayed as `posguard policy
// test --html` does, compared with the decisions recorded, labelled by
// the case verdicts, with the current denylist. A report is kept for TTL,
// then made again on the next request.
type PolicyReportConfig struct {
	Window    time.Duration // default 7 days
	MaxEvents int           // default 200,000
	TTL       time.Duration // default 1 h
}

func (c PolicyReportConfig) withDefaults() PolicyReportConfig {
	if c.Window <= 0 {
		c.Window = 7 * 24 * time.Hour
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 200_000
	}
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	return c
}

// Report states.
const (
	reportQueued  = "queued"
	reportRunning = "running"
	reportDone    = "done"
	reportFailed  = "failed"
)

// maxReports bounds the reports kept; the oldest finished one goes first.
const maxReports = 16

// reportJob is one version's report, made once and kept for TTL.
type reportJob struct {
	version int64
	read    atomic.Int64 // decision events read so far
	mu      sync.Mutex
	state   string
	html    []byte
	err     error
	started time.Time
	ended   time.Time
	sales   int
}

// ReportStatus is a report's progress (GET …/report?format=json).
type ReportStatus struct {
	Version int64     `json:"version"`
	State   string    `json:"state"`
	Read    int64     `json:"read"`
	Sales   int       `json:"sales,omitempty"`
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

func (j *reportJob) status() ReportStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := ReportStatus{Version: j.version, State: j.state, Read: j.read.Load(), Sales: j.sales, Started: j.started, Ended: j.ended}
	if j.err != nil {
		st.Error = j.err.Error()
	}
	return st
}

// reportCache holds the reports by version; one is made at a time, so a
// burst of requests cannot take HQ's CPUs from ingesting.
type reportCache struct {
	mu   sync.Mutex
	jobs map[int64]*reportJob
	run  chan struct{} // a one-slot semaphore
}

func newReportCache() *reportCache {
	return &reportCache{jobs: map[int64]*reportJob{}, run: make(chan struct{}, 1)}
}

// report returns the report job of a recorded version, starting it
// when there is none or the one kept is older than the TTL (a failed one
// is tried again after a minute).
func (s *Service) report(ctx context.Context, version int64) (*reportJob, error) {
	if _, err := s.cfg.Store.PolicyVersion(ctx, version); err != nil {
		return nil, err
	}
	cfg := s.cfg.PolicyReport.withDefaults()
	c := s.policies.reports
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.cfg.Now()
	if j, ok := c.jobs[version]; ok {
		j.mu.Lock()
		state, ended := j.state, j.ended
		j.mu.Unlock()
		fresh := state == reportQueued || state == reportRunning ||
			(state == reportDone && now.Sub(ended) < cfg.TTL) || (state == reportFailed && now.Sub(ended) < time.Minute)
		if fresh {
			return j, nil
		}
	}
	c.evict()
	j := &reportJob{version: version, state: reportQueued}
	c.jobs[version] = j
	go s.makeReport(j, cfg)
	return j, nil
}

// PolicyReportStatus is the state of a version's report, which it starts
// as GET …/report does.
func (s *Service) PolicyReportStatus(ctx context.Context, version int64) (ReportStatus, error) {
	j, err := s.report(ctx, version)
	if err != nil {
		return ReportStatus{}, err
	}
	return j.status(), nil
}

// evict drops the oldest finished reports beyond maxReports-1; under c.mu.
func (c *reportCache) evict() {
	for len(c.jobs) >= maxReports {
		var oldest *reportJob
		for _, j := range c.jobs {
			j.mu.Lock()
			done := j.state == reportDone || j.state == reportFailed
			older := oldest == nil || j.ended.Before(oldest.ended)
			j.mu.Unlock()
			if done && older {
				oldest = j
			}
		}
		if oldest == nil {
			return // all still running: keep them
		}
		delete(c.jobs, oldest.version)
	}
}

// reportTimeout bounds the making of one report.
const reportTimeout = 10 * time.Minute

func (s *Service) makeReport(j *reportJob, cfg PolicyReportConfig) {
	c := s.policies.reports
	c.run <- struct{}{}
	defer func() { <-c.run }()
	ctx, cancel := context.WithTimeout(context.Background(), reportTimeout)
	defer cancel()
	j.mu.Lock()
	j.state, j.started = reportRunning, s.cfg.Now()
	j.mu.Unlock()
	html, sales, err := s.backtestVersion(ctx, j, cfg)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ended, j.sales = s.cfg.Now(), sales
	if err != nil {
		j.state, j.err = reportFailed, err
		s.log.Warn("policy report failed", "version", j.version, "err", err)
		return
	}
	j.state, j.html = reportDone, html
}

// backtestVersion replays the stored decisions of the window through the
// version and renders the HTML report.
func (s *Service) backtestVersion(ctx context.Context, j *reportJob, cfg PolicyReportConfig) ([]byte, int, error) {
	rec, err := s.cfg.Store.PolicyVersion(ctx, j.version)
	if err != nil {
		return nil, 0, err
	}
	p, err := policy.Load(rec.Document)
	if err != nil {
		return nil, 0, fmt.Errorf("policy v%d: %w", j.version, err)
	}
	opts := backtest.Options{Policy: p}
	if _, opts.Denylist, err = s.cfg.Store.Denylist(ctx); err != nil {
		return nil, 0, err
	}
	labels, err := s.cfg.Store.Labels(ctx)
	if err != nil {
		return nil, 0, err
	}
	if len(labels) > 0 {
		truth := make([]event.AccountLabel, len(labels))
		for i, l := range labels {
			truth[i] = event.AccountLabel{Account: l.Account, Label: l.Label, Case: l.Case, At: l.At}
		}
		opts.Truth = backtest.NewGroundTruth(truth)
	}
	// The events go to the replay as the JSON lines `policy test` reads,
	// paged out of the store as it goes: memory holds a page, not the
	// window.
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.writeDecisions(ctx, pw, j, cfg))
	}()
	rep, err := backtest.Run(ctx, pr, opts)
	pr.CloseWithError(errors.New("replay ended")) // stops the writer if the replay failed early
	if err != nil && !errors.Is(err, backtest.ErrNothingReplayed) {
		return nil, 0, fmt.Errorf("backtest v%d: %w", j.version, err)
	}
	var page bytes.Buffer
	if err := backtest.WriteHTML(&page, rep); err != nil {
		return nil, 0, err
	}
	return page.Bytes(), rep.Input.Decisions, nil
}

// writeDecisions writes the decision events of the window, oldest first,
// at most cfg.MaxEvents.
func (s *Service) writeDecisions(ctx context.Context, w io.Writer, j *reportJob, cfg PolicyReportConfig) error {
	q := store.Query{Types: []event.Type{event.Decision}, Since: s.cfg.Now().Add(-cfg.Window)}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for sent := 0; sent < cfg.MaxEvents; {
		q.Limit = min(store.DefaultLimit, cfg.MaxEvents-sent)
		evs, err := s.cfg.Store.Events(ctx, q)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		sent += len(evs)
		j.read.Store(int64(sent))
		if len(evs) < q.Limit {
			return nil
		}
		last := evs[len(evs)-1]
		q.Since, q.After = last.At, last.ID
	}
	return nil
}
