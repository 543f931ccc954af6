package display

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// Everything from the broker is untrusted: no topic or payload may panic the
// display, and nothing for another store may reach the board.
func FuzzApply(f *testing.F) {
	f.Add(wire.AlertsTopic(testStore, "R1"), []byte(`{"id":"S001/R1/e/1"}`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		srv, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.apply(topic, payload); err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		if !strings.HasPrefix(topic, "posguard/v1/reg/"+testStore+"/") {
			t.Fatalf("accepted a message on %q", topic)
		}
	})
}

func FuzzParseResolve(f *testing.F) {
	f.Add([]byte(`{"register":"R1","reviewId":"sale-1","action":"approve","pin":"1234"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseResolve(bytes.NewReader(body))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "resolve request: ") {
				t.Fatalf("rejection does not say what: %v", err)
			}
			return
		}
		if wire.ValidateRegister(req.Register) != nil || wire.CheckEventID(req.ReviewID) != nil || (req.Action != "approve" && req.Action != "reject") {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// BenchmarkApplyAlert is the cost of one alert from the broker to the page
// queue: strict parse, checks, board update and the JSON for the pages
// (fan-out itself is sse.BenchmarkPublish).
func BenchmarkApplyAlert(b *testing.B) {
	srv, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var payloads [][]byte
	for i := 1; i <= 1000; i++ {
		p, _ := json.Marshal(alertEvent(testStore, "R1", uint64(i), policy.Deny, now))
		payloads = append(payloads, p)
	}
	topic := wire.AlertsTopic(testStore, "R1")
	i := 0
	for b.Loop() {
		if err := srv.apply(topic, payloads[i%len(payloads)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// The state file is read back after a restart, possibly damaged: it may be
// refused, never panic, and what it accepts survives a save and a re-read.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"format":"posguard-display-state/1","store":"S001","savedAt":"2026-11-25T10:00:01Z","alerts":[{"id":"S001/R1/ep/1","reviewId":"sale-1","register":"R1","at":"2026-11-25T10:00:00Z","outcome":"review","rules":[],"cart":[],"amount":1,"account":"a***","state":"sent","sentAt":"2026-11-25T10:00:05Z"}]}`))
	f.Add([]byte(`{"format":"posguard-display-state/1","store":"S001","savedAt":"2026-11-25T10:00:01Z","alerts":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseState(data, testStore)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("accepted state does not encode: %v", err)
		}
		again, err := parseState(b, testStore)
		if err != nil || len(again.Alerts) != len(doc.Alerts) || again.ClientID != doc.ClientID {
			t.Fatalf("saved form does not read back: %v", err)
		}
	})
}
