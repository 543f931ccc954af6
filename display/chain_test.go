package display

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

func chainAlert(stores ...string) event.Event {
	return event.Event{ID: "hq/chain/hop.0011223344556677/1", Seq: 1, Type: event.Alert, Store: event.HQStore, Register: event.HQChain,
		At: time.Now().UTC(), Detail: "chain rule hop: account_stores: account paid at 3 stores within 30m0s",
		Chain: &event.ChainInfo{Rule: "hop", Kind: "account_stores", Mode: "enforce", Reason: "account_stores: account paid at 3 stores within 30m0s",
			Account: "acct-crew-0001", Stores: stores, Events: []string{"S001/R1/e/1"}, Actions: []string{"alert"}}}
}

func TestApplyChainAlert(t *testing.T) {
	srv, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	other := chainAlert("S777")
	for _, c := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"about another store", js(other), "not this store"},
		{"a register's alert", js(alertEvent(testStore, "R1", 1, "deny", time.Now())), "without chain"},
		{"garbage", []byte("{"), "parse event"},
	} {
		if err := srv.apply(wire.StoreAlertsTopic(testStore), c.payload); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	if err := srv.apply(wire.StoreAlertsTopic(testStore), js(chainAlert("S002", testStore))); err != nil {
		t.Fatal(err)
	}
	snap := srv.board.Snapshot()
	if len(snap.Alerts) != 1 {
		t.Fatalf("board = %+v", snap)
	}
	a := snap.Alerts[0]
	if a.Outcome != board.Chain || a.Register != ChainRegister || a.Rules[0].ID != "hop" || strings.Contains(a.Account, "crew-0001") {
		t.Errorf("alert = %+v", a)
	}
}
