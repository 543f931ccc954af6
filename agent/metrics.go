package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/firmware-bridge/scanner"
)

// metrics are the agent's Prometheus series, on a registry of its own so
// tests and several agents in one process do not collide.
type metrics struct {
	reg          *prometheus.Registry
	decisions    *prometheus.CounterVec // outcome
	rules        *prometheus.CounterVec // rule, mode
	latency      prometheus.Histogram
	commitErrors prometheus.Counter
	idemReplays  prometheus.Counter
	scans        *prometheus.CounterVec // kind
	posErrors    prometheus.Counter
	pinFailures  prometheus.Counter
	resolutions  *prometheus.CounterVec // action
	policyVer    prometheus.Gauge
	links        *prometheus.GaugeVec // link
}

func newMetrics(st *state.Store) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posguard_agent_decisions_total", Help: "Payments decided, by outcome."}, []string{"outcome"}),
		rules: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posguard_agent_rules_fired_total", Help: "Rules that fired in decisions, by rule id and mode."}, []string{"rule", "mode"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "posguard_agent_decision_seconds", Help: "Time from payment token to durable decision.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1}}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "posguard_agent_commit_errors_total", Help: "Decisions that could not be made durable (payment refused)."}),
		idemReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "posguard_agent_idempotent_replays_total", Help: "POST /v1/decide retries answered from their Idempotency-Key."}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posguard_agent_scans_total", Help: "Scans read, by kind (item, payment, void, other)."}, []string{"kind"}),
		posErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "posguard_agent_pos_errors_total", Help: "Scans that could not be written to the POS port."}),
		pinFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "posguard_agent_pin_failures_total", Help: "Review resolutions refused for a wrong PIN or rate limit."}),
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posguard_agent_review_resolutions_total", Help: "Reviews resolved, by action."}, []string{"action"}),
		policyVer: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "posguard_agent_policy_version", Help: "Version of the policy in force (0: none, failMode decides)."}),
		links: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "posguard_agent_link_up", Help: "1 when the link is up (scanner, pos, hq)."}, []string{"link"}),
	}
	reg.MustRegister(m.decisions, m.rules, m.latency, m.commitErrors, m.idemReplays, m.scans, m.posErrors, m.pinFailures,
		m.resolutions, m.policyVer, m.links,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "posguard_agent_outbox_depth", Help: "Events not yet acknowledged by HQ."},
			func() float64 { d, _ := st.OutboxStats(); return float64(d) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// scannerDrops exports the scanner's count of partial SSI messages thrown
// away, by reason.
func (m *metrics) scannerDrops(scn *scanner.Scanner) {
	vec := prometheus.NewDesc("posguard_agent_scanner_partials_dropped_total",
		"Multi-packet SSI scans thrown away incomplete, by reason (timeout, code_type, new_message, too_long, closed).",
		[]string{"reason"}, nil)
	m.reg.MustRegister(dropCollector{desc: vec, scn: scn})
}

type dropCollector struct {
	desc *prometheus.Desc
	scn  *scanner.Scanner
}

func (c dropCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c dropCollector) Collect(ch chan<- prometheus.Metric) {
	for r, n := range c.scn.Drops() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), string(r))
	}
}
