// Command console measures the HQ console at chain size: a PostgreSQL
// store filled with a generated fleet (-registers, default 10,000 registers
// three to a store, each with its status) and -events (default 1,000,000)
// decision and alert events over -days days, served by the real
// `posguard hq` process (built from this checkout, open console on
// loopback). It then times every API call a console page makes and every
// page in a real headless Chromium, and prints Go benchmark lines:
//
//	BenchmarkConsoleAPI/call=alerts 1 <p50 ns> p50-ns <p99 ns> p99-ns <bytes> bytes
//	BenchmarkConsolePage/page=fleet 1 <ns> first-paint-ns <ns> loaded-ns
//
// first-paint is Chromium's first contentful paint; loaded is when the
// page's last API answer arrived (the page shows its data). The goals
// (issue 17): every API under 200 ms, every page's first paint under 1 s.
//
// Filling a million events takes minutes; the schema (-schema) is kept and
// reused by the next run when it already holds the fleet and the events
// (-refill to start over).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/bench/internal/agentproc"
	"github.com/posguard/posguard/bench/internal/loadavg"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/wire"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(1)
	}
}

type options struct {
	pg        string
	schema    string
	registers int
	events    int
	days      int
	refill    bool
	rounds    int
	chromium  string
	bin       string
}

func run(args []string) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.pg, "pg", cmpOr(os.Getenv("POSGUARD_TEST_PG"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL `URL` (default $POSGUARD_TEST_PG, else the local server's test database)")
	fs.StringVar(&o.schema, "schema", "posguard_console_bench", "schema holding the generated data, kept between runs")
	fs.IntVar(&o.registers, "registers", 10_000, "registers in the fleet, three to a store")
	fs.IntVar(&o.events, "events", 1_000_000, "events stored (decisions, and alerts for the held and refused sales)")
	fs.IntVar(&o.days, "days", 30, "the events spread over this many days up to now")
	fs.BoolVar(&o.refill, "refill", false, "drop the schema and fill it again")
	fs.IntVar(&o.rounds, "rounds", 20, "calls of each API endpoint (p50/p99 over them)")
	fs.StringVar(&o.chromium, "chromium", "/usr/bin/chromium", "Chromium `binary` for the page timings (none: API only)")
	fs.StringVar(&o.bin, "bin", "", "posguard `BINARY` to run (default: build this checkout's cmd/posguard)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.registers < 3 || o.events < 1 || o.days < 1 || o.rounds < 1 {
		return errors.New("-registers ≥ 3, -events, -days and -rounds ≥ 1")
	}
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`).MatchString(o.schema) {
		return fmt.Errorf("-schema %q: want a lower-case SQL identifier", o.schema)
	}
	ctx := context.Background()
	dbURL, err := prepareSchema(ctx, o)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "posguard-console-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := fill(ctx, o, dbURL); err != nil {
		return err
	}
	bin := o.bin
	if bin == "" {
		if bin, err = agentproc.Build(dir); err != nil {
			return err
		}
	}
	hq, err := startHQ(bin, dir, dbURL)
	if err != nil {
		return err
	}
	defer hq.Stop()
	fmt.Printf("# %d registers, %d events over %d days in PostgreSQL schema %s; load average %s\n", o.registers, o.events, o.days, o.schema, loadavg.String())
	apiErr := measureAPI(hq.URL, o)
	var pageErr error
	if o.chromium != "none" {
		pageErr = measurePages(hq.URL, o.chromium)
	}
	fmt.Printf("# load average after: %s\n", loadavg.String())
	return errors.Join(apiErr, pageErr)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// prepareSchema creates the schema (dropping it first with -refill) and
// returns the URL whose search_path selects it.
func prepareSchema(ctx context.Context, o options) (string, error) {
	conn, err := pgx.Connect(ctx, o.pg)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", redact(o.pg), err)
	}
	defer conn.Close(ctx)
	if o.refill {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+o.schema+" CASCADE"); err != nil {
			return "", fmt.Errorf("drop schema %s: %w", o.schema, err)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+o.schema); err != nil {
		return "", fmt.Errorf("create schema %s: %w", o.schema, err)
	}
	u, err := url.Parse(o.pg)
	if err != nil {
		return "", fmt.Errorf("-pg: %w", err)
	}
	q := u.Query()
	q.Set("search_path", o.schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// fleetID names register i: three registers to a store.
func fleetID(i int) (storeID, reg string) {
	return fmt.Sprintf("S%05d", i/3+1), fmt.Sprintf("R%d", i%3+1)
}

// rules fired in generated held and refused sales, as the example policy
// names them, with one reason each.
var rules = []sale.Fired{
	{ID: "tobacco-carton-limit", Action: "deny", Mode: "enforce", Reason: "tobacco cartons 5 > limit 2", Score: 80,
		Reasons: []sale.Reason{{Code: "cart.category_qty", Value: 5, Limit: 2}}},
	{ID: "fresh-topup-big-spend", Action: "review", Mode: "enforce", Reason: "top-up ¥15,000 30m before a ¥14,800 sale", Score: 40,
		Reasons: []sale.Reason{{Code: "topup.fresh", Value: 15000, Limit: 3600, Ago: 1800}}},
	{ID: "many-accounts-one-till", Action: "review", Mode: "enforce", Reason: "4 accounts at this register in 1h", Score: 40,
		Reasons: []sale.Reason{{Code: "till.accounts", Value: 4, Limit: 3, Window: 3600}}},
}

// fill stores the fleet's statuses and the events, unless the schema
// already holds them.
func fill(ctx context.Context, o options, dbURL string) error {
	st, err := store.OpenPostgres(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var have int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&have); err != nil {
		return fmt.Errorf("count events: %w", err)
	}
	if have >= o.events {
		fmt.Printf("# schema %s already holds %d events: reused (-refill to start over)\n", o.schema, have)
		return nil
	}
	if have > 0 {
		return fmt.Errorf("schema %s holds %d events, fewer than -events %d: run with -refill", o.schema, have, o.events)
	}
	now := time.Now().UTC().Truncate(time.Second)
	began := time.Now()
	for i := range o.registers {
		s, r := fleetID(i)
		status := wire.Status{Store: s, Register: r, Online: i%50 != 0, Version: "bench", UptimeSec: 3600,
			Policy: &wire.PolicyInfo{Name: "chain-default", Version: 7}, DenylistSeq: 12, DenylistEpoch: "bench", At: now}
		if err := st.SaveStatus(ctx, status, now); err != nil {
			return fmt.Errorf("save status %s/%s: %w", s, r, err)
		}
		if (i+1)%2000 == 0 {
			fmt.Fprintf(os.Stderr, "statuses: %d/%d (%s)\n", i+1, o.registers, time.Since(began).Round(time.Second))
		}
	}
	rng := rand.New(rand.NewPCG(7, 17))
	span := time.Duration(o.days) * 24 * time.Hour
	const batch = 1000
	evs := make([]event.Event, 0, batch)
	seq := make([]uint64, o.registers)
	stored := 0
	flush := func() error {
		if len(evs) == 0 {
			return nil
		}
		if _, err := st.SaveEvents(ctx, evs); err != nil {
			return fmt.Errorf("save events: %w", err)
		}
		stored += len(evs)
		evs = evs[:0]
		if stored%50_000 < batch {
			fmt.Fprintf(os.Stderr, "events: %d/%d (%s)\n", stored, o.events, time.Since(began).Round(time.Second))
		}
		return nil
	}
	for n := 0; n < o.events; {
		i := rng.IntN(o.registers)
		s, r := fleetID(i)
		seq[i]++
		at := now.Add(-span + time.Duration(float64(span)*float64(n)/float64(o.events)))
		saleID := fmt.Sprintf("sale-%d-%d", i, seq[i])
		amount := int64(300 + rng.IntN(3000))
		account := fmt.Sprintf("pg1:%016x", rng.Uint64()%200_000)
		d := &sale.Decision{Outcome: sale.Allow, Policy: sale.PolicyRef{Name: "chain-default", Version: 7}, Rules: []sale.Fired{}}
		switch p := rng.IntN(100); {
		case p < 2:
			f := rules[0]
			d.Outcome, d.Rules, d.Score, amount = sale.Deny, []sale.Fired{f}, f.Score, 28_000
		case p < 6:
			f := rules[1+rng.IntN(2)]
			d.Outcome, d.Rules, d.Score, amount = sale.Review, []sale.Fired{f}, f.Score, 14_800
		}
		req := &sale.Request{SaleID: saleID, Store: s, Register: r, At: at,
			Lines:   []sale.Line{{JAN: "4901234200012", Quantity: 1, Category: "food", UnitPrice: amount}},
			Payment: sale.Payment{Kind: "pg1", Account: account}}
		evs = append(evs, event.Event{ID: event.ID(s, r, "decision", seq[i]), Seq: seq[i], Type: event.Decision,
			Store: s, Register: r, At: at, SaleID: saleID, Request: req, Decision: d})
		n++
		if d.Outcome != sale.Allow && n < o.events {
			seq[i]++
			evs = append(evs, event.Event{ID: event.ID(s, r, "alert", seq[i]), Seq: seq[i], Type: event.Alert,
				Store: s, Register: r, At: at, SaleID: saleID, Request: req, Decision: d})
			n++
		}
		if len(evs) >= batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// A denylist of the size a chain keeps, changed in steps with reasons
	// (the lists page and its audit trail).
	for k := range 20 {
		add := make([]string, 500)
		for j := range add {
			add[j] = fmt.Sprintf("pg1:crew%05d%05d", k, j)
		}
		if _, err := st.DenylistChange(ctx, store.ListChange{Add: add, At: now, By: "bench (token)", Reason: fmt.Sprintf("crew %d", k)}); err != nil {
			return fmt.Errorf("denylist change: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	fmt.Printf("# filled %d registers and %d events in %s\n", o.registers, stored, time.Since(began).Round(time.Second))
	return nil
}

var listeningRE = regexp.MustCompile(`msg="HQ API listening".* url=(http://\S+)`)

// startHQ runs `posguard hq` on the store with an embedded broker (a
// password for HQ only: no register connects) and an open console on
// loopback, and waits for its API.
func startHQ(bin, dir, dbURL string) (*agentproc.Proc, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-hq-password"), 10)
	if err != nil {
		return nil, err
	}
	passwords := filepath.Join(dir, "broker.passwd")
	if err := os.WriteFile(passwords, []byte("hq:"+string(hash)+"\n"), 0o600); err != nil {
		return nil, err
	}
	hqPassword := filepath.Join(dir, "hq.password")
	if err := os.WriteFile(hqPassword, []byte("bench-hq-password\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return agentproc.StartCommand(bin, []string{"hq", "--db", dbURL, "--listen", "127.0.0.1:0",
		"--embed-broker", "127.0.0.1:" + strconv.Itoa(port), "--embed-passwords", passwords,
		"--mqtt-password-file", hqPassword}, listeningRE, 2*time.Minute)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// calls are the API requests the console's pages make, named as in the
// output. A call answering other than 200 fails the run: a page whose API
// is missing has no speed to report.
func calls(o options, since string) []struct{ name, path string } {
	s, _ := fleetID(o.registers / 2)
	return []struct{ name, path string }{
		{"fleet-stores", "/v1/fleet/stores?limit=100"},
		{"fleet-store", "/v1/fleet?store=" + s},
		{"rollout", "/v1/policy/rollout"},
		{"alerts", "/v1/alerts?limit=100"},
		{"alerts-store", "/v1/alerts?limit=100&store=" + s},
		{"events-store", "/v1/events?limit=100&store=" + s},
		{"stats-hourly", "/v1/stats/hourly?top=8&since=" + since},
		{"stats-rules", "/v1/stats/rules?since=" + since},
		{"cases", "/v1/cases?limit=100"},
		{"denylist-status", "/v1/denylist/status"},
		{"policies", "/v1/policies"},
		{"chain-rules", "/v1/chain/rules"},
	}
}

func measureAPI(base string, o options) error {
	since := url.QueryEscape(time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339))
	client := &http.Client{Timeout: time.Minute}
	var failed []string
	for _, c := range calls(o, since) {
		var lat []time.Duration
		var size int64
		for range o.rounds {
			t0 := time.Now()
			resp, err := client.Get(base + c.path)
			if err != nil {
				return fmt.Errorf("GET %s: %w", c.path, err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("GET %s: %w", c.path, err)
			}
			if resp.StatusCode != http.StatusOK {
				failed = append(failed, fmt.Sprintf("%s: %s", c.path, resp.Status))
				lat = nil
				break
			}
			lat = append(lat, time.Since(t0))
			size = n
		}
		if lat == nil {
			continue
		}
		slices.Sort(lat)
		fmt.Printf("BenchmarkConsoleAPI/call=%s 1 %d p50-ns %d p99-ns %d bytes\n", c.name, lat[len(lat)/2].Nanoseconds(), lat[(len(lat)*99)/100].Nanoseconds(), size)
	}
	if len(failed) > 0 {
		return fmt.Errorf("API calls failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

// pageTiming is what a page's performance entries say, in milliseconds
// since navigation started.
type pageTiming struct {
	FCP    float64 `json:"fcp"`
	Loaded float64 `json:"loaded"`
	Fetch  int     `json:"fetches"`
}

// pages are the console's pages.
var pages = []string{"fleet", "alerts", "cases", "lists", "policies", "charts"}

// measurePages opens each page in a fresh tab of one headless Chromium and
// reads its first contentful paint and when its last API answer ended.
func measurePages(base, chromium string) error {
	if _, err := os.Stat(chromium); err != nil {
		return fmt.Errorf("chromium: %w (-chromium none for the API only)", err)
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1400, 1000))
	defer cancel()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		return fmt.Errorf("start chromium: %w", err)
	}
	for _, p := range pages {
		// Twice: the first visit also pays for compiling the page's
		// scripts; the second is what a user moving between pages sees.
		for visit := range 2 {
			tab, cancelTab := chromedp.NewContext(browser)
			ctx, cancelTimeout := context.WithTimeout(tab, time.Minute)
			var timing pageTiming
			err := chromedp.Do(ctx,
				chromedp.Navigate(base+"/console/"+p),
				chromedp.WaitVisible(chromedp.CSS("nav")))
			if err == nil {
				// Wait until no API call has ended for half a second.
				_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => {
					const f = performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch');
					window.__pgSeen = window.__pgSeen || {n: -1, at: 0};
					if (f.length !== window.__pgSeen.n) { window.__pgSeen = {n: f.length, at: performance.now()}; return false; }
					return performance.now() - window.__pgSeen.at > 500;
				})()`, chromedp.WithPollingInterval(100*time.Millisecond)))
			}
			if err == nil {
				timing, err = chromedp.Run(ctx, chromedp.Evaluate[pageTiming](`(() => {
					const p = performance.getEntriesByName('first-contentful-paint')[0];
					const f = performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch');
					return {fcp: p ? p.startTime : -1, loaded: f.reduce((m, e) => Math.max(m, e.responseEnd), 0), fetches: f.length};
				})()`))
			}
			cancelTimeout()
			cancelTab()
			if err != nil {
				return fmt.Errorf("page %s: %w", p, err)
			}
			if visit == 1 {
				fmt.Printf("BenchmarkConsolePage/page=%s 1 %d first-paint-ns %d loaded-ns %d fetches\n", p,
					time.Duration(timing.FCP*float64(time.Millisecond)).Nanoseconds(), time.Duration(timing.Loaded*float64(time.Millisecond)).Nanoseconds(), timing.Fetch)
			}
		}
	}
	return nil
}
