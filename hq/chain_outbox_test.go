package hq

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/wire"
)

// HQ dies right after storing a firing (noClaim: it never gets to act) or
// between acting and marking the firing done (noDone): the next start
// carries the firing out, and its actions happen once.
func TestChainOutboxCrash(t *testing.T) {
	for _, crash := range []string{"before acting", "before marking done"} {
		t.Run(crash, func(t *testing.T) {
			t.Run("postgres", func(t *testing.T) {
				url := testenv.PostgresURL(t)
				outboxCrash(t, crash, func() store.Store {
					st, err := store.OpenPostgres(context.Background(), url)
					if err != nil {
						t.Fatal(err)
					}
					return st
				})
			})
			t.Run("bolt", func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "hq.db")
				outboxCrash(t, crash, func() store.Store {
					st, err := store.OpenBolt(path)
					if err != nil {
						t.Fatal(err)
					}
					return st
				})
			})
		})
	}
}

var errCrash = errors.New("injected: HQ died here")

// noClaim is a store on which HQ never gets to claim a firing.
type noClaim struct{ store.Store }

func (noClaim) ChainClaim(context.Context, string, time.Duration, int) ([]store.ChainFiring, error) {
	return nil, errCrash
}

// noDone is a store on which HQ acts but cannot mark a firing done.
type noDone struct {
	store.Store
	tried chan string
}

func (s noDone) ChainDone(_ context.Context, id string) error {
	s.tried <- id
	return errCrash
}

func outboxCrash(t *testing.T, crash string, open func() store.Store) {
	r := newChainRig(t, "hq")
	deltas := r.listen(t, "s4/r1", wire.DenylistDelta)
	regs := map[string]paho.Client{}
	acks := map[string]chan wire.Ack{}
	for _, s := range []string{"s1", "s2", "s3"} {
		regs[s], acks[s] = register(t, r.auth, r.b.URL(), s, "r1")
	}
	// HQ's own cases, which hold an alert once.
	ownCases := func(c *Config) { c.Chain.Cases = nil }

	st := open()
	var first store.Store = noClaim{st}
	tried := make(chan string, 10)
	if crash == "before marking done" {
		first = noDone{st, tried}
	}
	_, stop := r.runWith(t, "hq", first, "", ownCases)
	for i, s := range []string{"s1", "s2", "s3"} {
		publish(t, regs[s], wire.EventsTopic(s, "r1"), pay(s, "acct-crew", 1, 10*i))
		collectAcks(t, acks[s], 1) // counted, and the firing kept, before the ack
	}
	if crash == "before marking done" {
		select {
		case <-tried: // acted, then died
		case <-time.After(10 * time.Second):
			t.Fatal("the firing was not carried out")
		}
		if d := waitDelta(t, deltas, r.trusted); !slices.Equal(d.Add, []string{"acct-crew"}) {
			t.Fatalf("delta before the crash = %+v", d)
		}
	} else {
		time.Sleep(200 * time.Millisecond) // what it would have done by now
		if _, accounts, _ := st.Denylist(context.Background()); len(accounts) != 0 {
			t.Fatalf("acted on a store it cannot claim from: %v", accounts)
		}
	}
	stop()
	st.Close()

	st = open()
	defer st.Close()
	_, stop = r.runWith(t, "hq", st, "", ownCases)
	ctx := context.Background()
	waitFor(t, "the case", func() bool {
		cs, err := st.Cases(ctx, store.CaseQuery{Account: "acct-crew"})
		return err == nil && len(cs) == 1 && cs[0].Alerts == 1
	})
	if crash == "before acting" {
		if d := waitDelta(t, deltas, r.trusted); !slices.Equal(d.Add, []string{"acct-crew"}) {
			t.Fatalf("delta after the restart = %+v", d)
		}
	}
	select {
	case b := <-deltas:
		t.Fatalf("a second delta: %s", b)
	case <-time.After(500 * time.Millisecond):
	}
	stop()
	evs, err := st.Events(ctx, store.Query{Store: event.HQStore, Types: []event.Type{event.DenylistChanged}})
	if err != nil || len(evs) != 1 || evs[0].Denylist.By != "chain:crew-hopping" {
		t.Errorf("denylist records = %+v, %v; want one by chain:crew-hopping", evs, err)
	}
	as, err := st.Alerts(ctx, store.Query{Store: event.HQStore})
	var rules []string
	for _, a := range as {
		rules = append(rules, a.Chain.Rule)
	}
	slices.Sort(rules)
	// crew-hopping at s3, the shadow rule at s2 and s3.
	if err != nil || !slices.Equal(rules, []string{"crew-hopping", "quiet", "quiet"}) {
		t.Errorf("alerts = %v, %v", rules, err)
	}
	// Nothing is left pending.
	if err := st.ChainRelease(ctx, "hq"); err != nil {
		t.Fatal(err)
	}
	if left, err := st.ChainClaim(ctx, "probe", time.Minute, 10); err != nil || len(left) != 0 {
		t.Errorf("pending after the restart: %+v, %v", left, err)
	}
}
