package hq

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connected   prometheus.Gauge
	stored      prometheus.Counter
	duplicates  prometheus.Counter
	rejected    prometheus.Counter
	storeErrors prometheus.Counter
	denylistSeq prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "posguard_hq_broker_connected",
			Help: "1 while connected to the MQTT broker."}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "posguard_hq_events_stored_total",
			Help: "Events stored for the first time."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "posguard_hq_events_duplicate_total",
			Help: "Events received again (a lost ack) and skipped."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "posguard_hq_messages_rejected_total",
			Help: "MQTT messages refused as malformed or spoofed."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "posguard_hq_store_errors_total",
			Help: "Batches the store failed to save (left unacked for resend)."}),
		denylistSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: "posguard_hq_denylist_seq",
			Help: "Sequence number of the latest denylist change."}),
	}
	for _, c := range []prometheus.Collector{m.connected, m.stored, m.duplicates, m.rejected, m.storeErrors, m.denylistSeq} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
