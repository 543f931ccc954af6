package hq

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/wire"
)

// TestFleetAgreesWithPush: the moment `policy push` reports a register
// applied the new version, /v1/fleet says so too. Registers here answer a
// policy publish at once with their new retained status, as agents do.
func TestFleetAgreesWithPush(t *testing.T) {
	f := start(t)
	var version atomic.Int64
	version.Store(1)
	regs := []string{"r1", "r2", "r3"}
	for _, id := range regs {
		c, _ := register(t, f.auth, f.b.URL(), "s1", id)
		status := func() {
			b, _ := json.Marshal(wire.Status{Store: "s1", Register: id, Online: true, Version: "test",
				Policy: &wire.PolicyInfo{Name: "chain", Version: version.Load()}, Links: wire.Links{Scanner: wire.LinkUp, POS: wire.LinkUp}, At: time.Now()})
			c.Publish(wire.StatusTopic("s1", id), 1, true, b)
		}
		status()
		tok := c.Subscribe(wire.PolicyTopic(wire.ScopeAll), 1, func(paho.Client, paho.Message) { go status() })
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe policy: %v", tok.Error())
		}
	}
	waitFor(t, "the fleet", func() bool {
		var fleet []fleetEntry
		getJSON(t, f.http.URL+"/v1/fleet", &fleet)
		return len(fleet) == len(regs)
	})
	for v := int64(2); v <= 4; v++ {
		version.Store(v)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rep, err := push.Run(ctx, push.Options{MQTT: f.auth.MQTT(f.b.URL(), push.PushUsername), Scope: wire.ScopeAll,
			Bundle: []byte(fmt.Sprintf("bundle v%d", v)), Version: v, Expect: len(regs)})
		cancel()
		if err != nil || len(rep.Applied) != len(regs) {
			t.Fatalf("push v%d: %+v, %v", v, rep, err)
		}
		var fleet []fleetEntry
		getJSON(t, f.http.URL+"/v1/fleet", &fleet)
		for _, e := range fleet {
			if e.PolicyVersion != v {
				t.Errorf("push reported v%d applied; /v1/fleet right after says %s/%s is on v%d", v, e.Store, e.Register, e.PolicyVersion)
			}
		}
	}
}
