package hq

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/posguard/posguard/hq/store"
)

// listMetrics are the fraud team's figures: cases by state and the lists'
// entries, read from the store when scraped (so every HQ instance sharing
// a database reports the same), and the case moves this instance made.
type listMetrics struct {
	st  store.Store
	log *slog.Logger

	cases     *prometheus.Desc
	allow     *prometheus.Desc
	autoDeny  *prometheus.Desc
	scrapeErr *prometheus.Desc
	moves     *prometheus.CounterVec
}

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 5 * time.Second

func newListMetrics(reg prometheus.Registerer, st store.Store, log *slog.Logger) (*listMetrics, error) {
	m := &listMetrics{st: st, log: log,
		cases: prometheus.NewDesc("posguard_hq_cases", "Cases by state, in HQ's store.", []string{"state"}, nil),
		allow: prometheus.NewDesc("posguard_hq_allowlist_entries", "Accounts on the allowlist, in HQ's store.", nil, nil),
		autoDeny: prometheus.NewDesc("posguard_hq_denylist_auto_entries",
			"Denylist entries HQ added itself, by the chain rule that added them (rule \"case\": a confirmed case).", []string{"rule"}, nil),
		scrapeErr: prometheus.NewDesc("posguard_hq_list_metrics_errors",
			"1 when this scrape could not read cases or lists from the store (logged).", nil, nil),
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posguard_hq_case_moves_total",
			Help: "Cases this HQ instance opened (from \"\") or moved, by from and to state."}, []string{"from", "to"}),
	}
	for _, c := range []prometheus.Collector{m, m.moves} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// moved counts a case move (cases.Service.OnMove).
func (m *listMetrics) moved(from, to string) { m.moves.WithLabelValues(from, to).Inc() }

func (m *listMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.cases, m.allow, m.autoDeny, m.scrapeErr} {
		ch <- d
	}
}

func (m *listMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	failed := 0.0
	fail := func(what string, err error) {
		failed = 1
		m.log.Warn("metrics: "+what+" not read from the store", "err", err)
	}
	if counts, err := m.st.CaseCounts(ctx); err != nil {
		fail("cases", err)
	} else {
		// Every state, so a state emptied reads 0 rather than vanishing.
		for _, st := range []string{store.CaseOpen, store.CaseConfirmedFraud, store.CaseFalsePositive, store.CaseClosed} {
			ch <- prometheus.MustNewConstMetric(m.cases, prometheus.GaugeValue, float64(counts[st]), st)
		}
	}
	if _, accts, _, err := m.st.Allowlist(ctx); err != nil {
		fail("allowlist", err)
	} else {
		ch <- prometheus.MustNewConstMetric(m.allow, prometheus.GaugeValue, float64(len(accts)))
	}
	if details, err := m.st.DenylistDetails(ctx); err != nil {
		fail("denylist details", err)
	} else {
		byRule := map[string]int{}
		for _, d := range details {
			if d.Rule == "" {
				continue // added by a person without a rule
			}
			rule := d.Rule
			if strings.HasPrefix(rule, "case:") {
				rule = "case" // one series for every case, not one per case
			}
			byRule[rule]++
		}
		for rule, n := range byRule {
			ch <- prometheus.MustNewConstMetric(m.autoDeny, prometheus.GaugeValue, float64(n), rule)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.scrapeErr, prometheus.GaugeValue, failed)
}
