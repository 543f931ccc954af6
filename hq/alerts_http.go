package hq

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy/reason"
	"github.com/posguard/posguard/policy/sale"
)

// The console's live alert feed and its charts' data.

const (
	// feedPoll is how often a stream looks for alerts that other HQ
	// instances on the same database stored; this instance's own wake it
	// at once.
	feedPoll = time.Second
	// feedPage bounds one read of the feed; feedSeen the ids a stream
	// remembers to drop what a rewound read shows again (see
	// store.FeedOverlap): more than HQ stores in FeedOverlap.
	feedPage = 200
	feedSeen = 20_000
	// streamHeartbeat keeps proxies from closing a quiet stream.
	streamHeartbeat = 15 * time.Second
	// statsWindow is the range of a stats request that names no since.
	statsWindow = 24 * time.Hour
)

func (s *Service) alertRoutes() []Route {
	return []Route{
		// The alerts as HQ stores them, as SSE: event "alert" with the
		// same JSON as GET /v1/alerts, its SSE id the feed position a
		// reconnecting EventSource sends back as Last-Event-ID.
		{"GET /v1/alerts/stream", apiauth.Read, http.HandlerFunc(s.alertStream)},
		{"GET /v1/stats/hourly", apiauth.Read, http.HandlerFunc(s.statsHourly)},
		{"GET /v1/stats/rules", apiauth.Read, http.HandlerFunc(s.statsRules)},
	}
}

// newAlertView is a as the API shows it: its fired rules' reasons in
// Japanese and English from the templates the store display and the POS
// use, its account masked as the display masks it, its cart's total.
func newAlertView(a store.Alert) alertView {
	v := alertView{Alert: a}
	if d := a.Decision; d != nil && len(d.Rules) > 0 {
		v.Text = &alertText{JA: reason.Decision(reason.Japanese, *d), EN: reason.Decision(reason.English, *d)}
	}
	switch {
	case a.Request != nil:
		v.MaskedAccount = reason.MaskAccount(a.Request.Payment.Account)
		v.Amount = store.CartAmount(a.Request.Lines)
	case a.Chain != nil:
		v.MaskedAccount = reason.MaskAccount(a.Chain.Account)
	}
	return v
}

// queryRange reads since and until (RFC 3339) and order into q.
func queryRange(r *http.Request, q *store.Query) error {
	var err error
	if q.Since, err = formTime(r, "since"); err != nil {
		return err
	}
	if q.Until, err = formTime(r, "until"); err != nil {
		return err
	}
	switch {
	case q.After != "" && q.Since.IsZero():
		return errors.New("after: a cursor needs since (the last item's time)")
	case q.Before != "" && q.Until.IsZero():
		return errors.New("before: a cursor needs until (the last item's time)")
	case !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since):
		return errors.New("until: want a time after since")
	}
	switch o := r.FormValue("order"); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return fmt.Errorf("order %q: want asc or desc", o)
	}
	switch o := r.FormValue("outcome"); o {
	case "", string(sale.Allow), string(sale.Review), string(sale.Deny):
	default:
		return fmt.Errorf("outcome %q: want allow, review or deny", o)
	}
	return nil
}

func formTime(r *http.Request, name string) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want RFC 3339 time: %w", name, err)
	}
	return t, nil
}

// alertStream serves the feed of alerts matching the request's filters
// (store, register, account, rule, outcome, since) as SSE, from the
// position in Last-Event-ID (a reconnect) or from now. Events: "ready"
// once the stream follows the feed (a page lists what came before after
// it, and drops by id what it gets twice), then "alert" for each alert.
func (s *Service) alertStream(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	f := &feedReader{feed: s.cfg.Store, q: q, seen: map[string]struct{}{}}
	if f.pos = r.Header.Get("Last-Event-ID"); f.pos == "" {
		if f.pos, err = s.cfg.Store.FeedEnd(r.Context()); err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
	}
	// The first read before the answer: a position this store cannot
	// follow is the client's mistake, said with a status.
	first, err := f.read(r.Context())
	switch {
	case errors.Is(err, store.ErrFeedPos):
		httpError(w, http.StatusBadRequest, fmt.Errorf("Last-Event-ID: %w", err))
		return
	case err != nil:
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch := make(chan sse.Message, feedPage)
	go func() {
		defer close(ch)
		if err := s.follow(ctx, f, first, ch); err != nil && ctx.Err() == nil {
			// The stream ends; the page's EventSource reconnects from
			// its last id.
			s.log.Warn("alert stream", "err", err)
		}
	}()
	ready, _ := sse.JSON("ready", map[string]string{"pos": f.pos})
	if err := sse.Stream(w, r, []sse.Message{ready}, ch, streamHeartbeat, s.feed.stopped()); err != nil {
		s.log.Debug("alert stream ended", "err", err)
	}
}

// follow sends the alerts f reads to ch, reading when this instance stores
// alerts and every feedPoll, until ctx ends or a read fails.
func (s *Service) follow(ctx context.Context, f *feedReader, first []store.FeedAlert, ch chan<- sse.Message) error {
	tick := time.NewTicker(feedPoll)
	defer tick.Stop()
	items := first
	for {
		for _, it := range items {
			m, err := sse.JSON("alert", newAlertView(it.Alert))
			if err != nil {
				return err
			}
			m.ID = it.Pos
			select {
			case ch <- m:
			case <-ctx.Done():
				return nil
			}
		}
		if !f.more {
			select {
			case <-ctx.Done():
				return nil
			case <-s.feed.wait():
			case <-tick.C:
			}
		}
		var err error
		if items, err = f.read(ctx); err != nil {
			return err
		}
	}
}

// feedReader follows the feed for one stream: each round reads again from
// a little before its position (store.FeedRewind) and drops what it sent.
type feedReader struct {
	feed store.Feed
	q    store.Query
	pos  string // the last position read
	from string // where a round in progress goes on
	more bool   // a round in progress: the last read was a full page
	seen map[string]struct{}
	ids  []string // seen, oldest first
}

func (f *feedReader) read(ctx context.Context) ([]store.FeedAlert, error) {
	if !f.more {
		var err error
		if f.from, err = store.FeedRewind(f.pos); err != nil {
			return nil, err
		}
	}
	items, err := f.feed.AlertFeed(ctx, f.q, f.from, feedPage)
	if err != nil {
		return nil, err
	}
	f.more = len(items) == feedPage
	out := items[:0]
	for _, it := range items {
		if _, ok := f.seen[it.ID]; ok {
			continue
		}
		f.seen[it.ID] = struct{}{}
		if f.ids = append(f.ids, it.ID); len(f.ids) > feedSeen {
			delete(f.seen, f.ids[0])
			f.ids = f.ids[1:]
		}
		out = append(out, it)
	}
	if len(items) > 0 {
		f.from = items[len(items)-1].Pos
		f.pos = f.from
	}
	return out, nil
}

// feedSignal wakes the streams when this instance stores alerts, and ends
// them when it stops. The zero value is ready.
type feedSignal struct {
	mu   sync.Mutex
	ch   chan struct{} // closed on wake, then replaced
	done chan struct{}
}

func (f *feedSignal) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	return f.ch
}

func (f *feedSignal) wake() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch != nil {
		close(f.ch)
		f.ch = nil
	}
}

func (f *feedSignal) stopped() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		f.done = make(chan struct{})
	}
	return f.done
}

// stop ends every stream: HQ is shutting down, and its HTTP server would
// otherwise wait for them.
func (f *feedSignal) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		f.done = make(chan struct{})
	}
	select {
	case <-f.done:
	default:
		close(f.done)
	}
}

// statsQuery reads since (default: statsWindow ago), until, store, limit
// and top.
func (s *Service) statsQuery(r *http.Request) (store.StatsQuery, error) {
	q := store.StatsQuery{Store: r.FormValue("store")}
	var err error
	if q.Since, err = formTime(r, "since"); err != nil {
		return q, err
	}
	if q.Since.IsZero() {
		q.Since = s.cfg.Now().Add(-statsWindow)
	}
	if q.Until, err = formTime(r, "until"); err != nil {
		return q, err
	}
	if !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, errors.New("until: want a time after since")
	}
	for name, n := range map[string]*int{"limit": &q.Limit, "top": &q.Top} {
		if v := r.FormValue(name); v != "" {
			if _, err := fmt.Sscan(v, n); err != nil || *n <= 0 {
				return q, fmt.Errorf("%s: want a positive integer", name)
			}
		}
	}
	return q, nil
}

// statsHourly serves decisions, reviews, denies and yen refused per store
// and hour, from the rollup kept at ingest.
func (s *Service) statsHourly(w http.ResponseWriter, r *http.Request) {
	serveStats(s, w, r, s.cfg.Store.HourlyStats)
}

// statsRules serves the rules fired most in the range, fleet-wide.
func (s *Service) statsRules(w http.ResponseWriter, r *http.Request) {
	if r.FormValue("store") != "" {
		httpError(w, http.StatusBadRequest, errors.New("store: rule counts are fleet-wide"))
		return
	}
	serveStats(s, w, r, s.cfg.Store.RuleStats)
}

// serveStats answers what fetch finds for the request's range (see
// statsQuery) as a JSON array.
func serveStats[T any](s *Service, w http.ResponseWriter, r *http.Request, fetch func(context.Context, store.StatsQuery) ([]T, error)) {
	q, err := s.statsQuery(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	out, err := fetch(r.Context(), q)
	writeList(w, out, err)
}

// writeList answers a listing: the items as a JSON array ([] when there
// are none), or the store's error.
func writeList[T any](w http.ResponseWriter, out []T, err error) {
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	if out == nil {
		out = []T{}
	}
	writeJSON(w, out)
}
