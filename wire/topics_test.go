package wire_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/posguard/posguard/wire"
)

func TestTopicBuilders(t *testing.T) {
	tests := []struct{ got, want string }{
		{wire.PolicyTopic(wire.ScopeAll), "posguard/v1/policy/all"},
		{wire.PolicyTopic("s042"), "posguard/v1/policy/s042"},
		{wire.DenylistDelta, "posguard/v1/denylist/delta"},
		{wire.DenylistSnapshot, "posguard/v1/denylist/snapshot"},
		{wire.EventsTopic("s042", "r1"), "posguard/v1/reg/s042/r1/events"},
		{wire.AlertsTopic("s042", "r1"), "posguard/v1/reg/s042/r1/alerts"},
		{wire.StatusTopic("s042", "r1"), "posguard/v1/reg/s042/r1/status"},
		{wire.CmdTopic("s042", "r1"), "posguard/v1/reg/s042/r1/cmd"},
		{wire.AckTopic("s042", "r1"), "posguard/v1/ack/s042/r1"},
		{wire.Username("s042", "r1"), "s042/r1"},
		{wire.ClientID("s042", "r1"), "s042/r1"},
		{wire.DisplayUsername("s042"), "display/s042"},
		{wire.HQEventsFilter(""), "posguard/v1/reg/+/+/events"},
		{wire.HQEventsFilter("hq"), "$share/hq/posguard/v1/reg/+/+/events"},
		{wire.HQAlertsFilter("g1"), "$share/g1/posguard/v1/reg/+/+/alerts"},
		{wire.HQCmdFilter(""), "posguard/v1/reg/+/+/cmd"},
		{wire.HQStatusFilter, "posguard/v1/reg/+/+/status"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if got, want := wire.DisplayFilters("s042"), []string{"posguard/v1/reg/s042/+/alerts", "posguard/v1/reg/s042/+/status", "posguard/v1/store/s042/alerts"}; !slices.Equal(got, want) {
		t.Errorf("DisplayFilters = %q, want %q", got, want)
	}
	hq := wire.HQFilters("grp")
	if !slices.Contains(hq, wire.HQStatusFilter) || !slices.Contains(hq, "$share/grp/posguard/v1/reg/+/+/events") {
		t.Errorf("HQFilters = %q: want shared events and unshared status", hq)
	}
	agent := wire.AgentFilters("s042", "r1")
	for _, want := range []string{"posguard/v1/policy/all", "posguard/v1/policy/s042", wire.DenylistDelta, wire.DenylistSnapshot, "posguard/v1/reg/s042/r1/cmd", "posguard/v1/ack/s042/r1"} {
		if !slices.Contains(agent, want) {
			t.Errorf("AgentFilters lacks %q", want)
		}
	}
	subs := wire.AgentSubscriptions("s042", "r1")
	want := map[string]byte{
		"posguard/v1/policy/all": 0, "posguard/v1/policy/s042": 0,
		wire.DenylistDelta: 0, wire.DenylistSnapshot: 0, wire.AllowlistDelta: 0, wire.AllowlistSnapshot: 0,
		"posguard/v1/ack/s042/r1":     0,
		"posguard/v1/reg/s042/r1/cmd": 1, "posguard/v1/store/s042/facts/+": 1,
	}
	if !maps.Equal(subs, want) {
		t.Errorf("AgentSubscriptions = %v, want %v", subs, want)
	}
}

func TestParseRegTopic(t *testing.T) {
	tests := []struct {
		topic                 string
		store, reg, kind, err string
	}{
		{topic: "posguard/v1/reg/s042/r1/events", store: "s042", reg: "r1", kind: "events"},
		{topic: "posguard/v1/reg/S_1/reg-2/status", store: "S_1", reg: "reg-2", kind: "status"},
		{topic: "posguard/v1/reg/s/r/cmd", store: "s", reg: "r", kind: "cmd"},
		{topic: "posguard/v1/reg/s/r/alerts", store: "s", reg: "r", kind: "alerts"},
		{topic: "posguard/v2/reg/s/r/events", err: "not under"},
		{topic: "posguard/v1/reg/s/r", err: "levels"},
		{topic: "posguard/v1/reg/s/r/x/events", err: "levels"},
		{topic: "posguard/v1/reg//r/events", err: "empty"},
		{topic: "posguard/v1/reg/s//events", err: "empty"},
		{topic: "posguard/v1/reg/+/r/events", err: "not allowed"},
		{topic: "posguard/v1/reg/s/#/events", err: "not allowed"},
		{topic: "posguard/v1/reg/s/r/ack", err: "unknown kind"},
		{topic: "posguard/v1/reg/all/r/events", err: "reserved"},
		{topic: "posguard/v1/reg/display/r/events", err: "reserved"},
		{topic: "posguard/v1/reg/bridge/r/events", err: "reserved"},
		{topic: "posguard/v1/reg/" + strings.Repeat("a", 33) + "/r/events", err: "longer"},
		{topic: "posguard/v1/reg/s.1/r/events", err: "not allowed"},
		{topic: "", err: "not under"},
	}
	for _, tt := range tests {
		store, reg, kind, err := wire.ParseRegTopic(tt.topic)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRegTopic(%q) error = %v, want containing %q", tt.topic, err, tt.err)
			}
			continue
		}
		if err != nil || store != tt.store || reg != tt.reg || kind != tt.kind {
			t.Errorf("ParseRegTopic(%q) = %q %q %q %v, want %q %q %q", tt.topic, store, reg, kind, err, tt.store, tt.reg, tt.kind)
		}
	}
}

func TestParseAckAndPolicyTopic(t *testing.T) {
	if s, r, err := wire.ParseAckTopic("posguard/v1/ack/s1/r2"); err != nil || s != "s1" || r != "r2" {
		t.Errorf("ParseAckTopic = %q %q %v", s, r, err)
	}
	for _, bad := range []string{"posguard/v1/ack/s1", "posguard/v1/ack/s1/r2/x", "posguard/v1/ack/+/r", "posguard/v1/reg/s/r/cmd"} {
		if _, _, err := wire.ParseAckTopic(bad); err == nil {
			t.Errorf("ParseAckTopic(%q) accepted", bad)
		}
	}
	for topic, want := range map[string]string{"posguard/v1/policy/all": "all", "posguard/v1/policy/s9": "s9"} {
		if got, err := wire.ParsePolicyTopic(topic); err != nil || got != want {
			t.Errorf("ParsePolicyTopic(%q) = %q %v", topic, got, err)
		}
	}
	for _, bad := range []string{"posguard/v1/policy/", "posguard/v1/policy/a/b", "posguard/v1/policy/#", "posguard/v1/policy/display"} {
		if _, err := wire.ParsePolicyTopic(bad); err == nil {
			t.Errorf("ParsePolicyTopic(%q) accepted", bad)
		}
	}
}

// Every built topic must parse back to its parts: the builders and the
// parser are one contract.
func TestBuildParseRoundTrip(t *testing.T) {
	for _, kind := range []string{wire.KindEvents, wire.KindAlerts, wire.KindStatus, wire.KindCmd} {
		s, r, k, err := wire.ParseRegTopic(wire.RegTopic("st-1", "R_2", kind))
		if err != nil || s != "st-1" || r != "R_2" || k != kind {
			t.Errorf("round trip %s: %q %q %q %v", kind, s, r, k, err)
		}
	}
}

func FuzzParseRegTopic(f *testing.F) {
	f.Fuzz(func(t *testing.T, topic string) {
		store, reg, kind, err := wire.ParseRegTopic(topic)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		if strings.ContainsAny(store+reg, "/+#") || store == "" || reg == "" {
			t.Fatalf("accepted bad ids %q %q", store, reg)
		}
		if got := wire.RegTopic(store, reg, kind); got != topic {
			t.Fatalf("rebuilt %q from %q", got, topic)
		}
	})
}

func FuzzParseAckTopic(f *testing.F) {
	f.Fuzz(func(t *testing.T, topic string) {
		store, reg, err := wire.ParseAckTopic(topic)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		if got := wire.AckTopic(store, reg); got != topic {
			t.Fatalf("rebuilt %q from %q", got, topic)
		}
	})
}

func FuzzParsePolicyTopic(f *testing.F) {
	f.Fuzz(func(t *testing.T, topic string) {
		scope, err := wire.ParsePolicyTopic(topic)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		if got := wire.PolicyTopic(scope); got != topic {
			t.Fatalf("rebuilt %q from %q", got, topic)
		}
	})
}
