package agent_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/internal/brokertest"
	"github.com/posguard/posguard/internal/mosquittotest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/token"
	"github.com/posguard/posguard/wire"
)

// till is one register of the store tests: its fixture (files, state) and
// the configuration it restarts with.
type till struct {
	f   *fixture
	cfg *config.Config
	*running
}

// tillBroker is the broker the tills of a test connect to: its URL and
// how each register authenticates, with a password file (the embedded
// broker) or with the certificates gen-certs.sh made (Mosquitto).
type tillBroker struct {
	url string
	// passwordFile is the file holding identity's password; nil with TLS.
	passwordFile func(identity string) string
	// certs is gen-certs.sh's output directory; "" with passwords.
	certs string
}

// embeddedBroker runs the embedded broker with a password for each
// identity (STORE/REG).
func embeddedBroker(t *testing.T, identities ...string) (*broker.Broker, tillBroker) {
	t.Helper()
	b, auth := embedtest.Start(t, identities...)
	return b, tillBroker{url: b.URL(), passwordFile: auth.PasswordFile}
}

// mosquittoBroker runs a private Mosquitto with the shipped configuration
// and the certificates and per-register ACL gen-certs.sh makes for the
// identities (STORE/REG).
func mosquittoBroker(t *testing.T, identities ...string) tillBroker {
	t.Helper()
	bin := mosquittotest.Binary(t)
	certs := t.TempDir()
	args := []string{"-n", "127.0.0.1"}
	for _, id := range identities {
		args = append(args, "-r", id)
	}
	mosquittotest.GenCerts(t, certs, args...)
	addr, _ := mosquittotest.Start(t, bin, certs)
	return tillBroker{url: "ssl://" + addr, certs: certs}
}

// hqYAML is the hq: section that connects register id to the broker.
func (b tillBroker) hqYAML(id string) string {
	y := "hq:\n  broker: " + b.url + "\n  maxReconnect: 500ms\n"
	if b.passwordFile != nil {
		return y + "  passwordFile: " + b.passwordFile(id) + "\n"
	}
	cert := filepath.Join(b.certs, "reg."+strings.ReplaceAll(id, "/", "."))
	return y + "  caFile: " + filepath.Join(b.certs, "ca.crt") + "\n  certFile: " + cert + ".crt\n  keyFile: " + cert + ".key\n"
}

// startTill starts register reg of store on broker b. The fixtures share
// the issuer and account keys, so tokens minted for one till verify at
// every other and EMV accounts hash alike.
func startTill(t *testing.T, b tillBroker, store, reg string) *till {
	t.Helper()
	return startTillWith(t, b, store, reg, "")
}

// startPTYTill starts a till that reads its scanner and feeds its POS over
// pseudo-terminals, as a till in a store does.
func startPTYTill(t *testing.T, b tillBroker, store, reg string) (*till, *ptyRig) {
	t.Helper()
	s, p, y := newPTYLinks(t)
	tl := startTillWith(t, b, store, reg, y)
	r := &ptyRig{running: tl.running, t: t, f: tl.f, scn: s, pos: p}
	r.linksUp()
	return tl, r
}

// startTillWith is startTill with extra configuration appended.
func startTillWith(t *testing.T, b tillBroker, store, reg, extra string) *till {
	t.Helper()
	f := newFixture(t)
	y := f.yaml(b.hqYAML(store+"/"+reg) + extra)
	y = strings.Replace(y, "store: S001\nregister: R1\n", fmt.Sprintf("store: %s\nregister: %s\n", store, reg), 1)
	p := f.write("agent.yaml", []byte(y))
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	tl := &till{f: f, cfg: cfg}
	tl.restart(t)
	return tl
}

func (tl *till) restart(t *testing.T) {
	t.Helper()
	tl.running = start(t, tl.cfg, agent.Options{})
	waitFor(t, tl.cfg.Register+" to share facts", func() bool {
		st := tl.status(t)
		return st.HQ.Peers != nil && st.HQ.Peers.Reachable
	})
}

func (tl *till) status(t *testing.T) agent.Status {
	t.Helper()
	var st agent.Status
	tl.do(t, "GET", "/v1/status", nil, &st)
	return st
}

// caughtUp waits until the till has applied the facts of peer's last
// decision, as its status tells.
func (tl *till) caughtUp(t *testing.T, peer *till) {
	t.Helper()
	evs := peer.Events(0, 1000)
	if len(evs) == 0 {
		t.Fatal("the peer has decided nothing")
	}
	at := evs[len(evs)-1].At
	waitFor(t, tl.cfg.Register+" to apply its peers' facts", func() bool {
		p := tl.status(t).HQ.Peers
		return p != nil && !p.LastFactAt.Before(at)
	})
}

// wantRefused fails unless res denies the token for reason.
func wantRefused(t *testing.T, what string, res agent.Result, reason string) {
	t.Helper()
	for _, f := range res.Decision.Rules {
		if f.ID == policy.TokenRuleID && res.Outcome == policy.Deny && strings.Contains(f.Reason, reason) {
			return
		}
	}
	t.Fatalf("%s: %s %+v, want deny, %s", what, res.Outcome, res.Decision.Rules, reason)
}

// One store, one guard: the registers of S001 share spent tokens, EMV
// counters and sales; S002 is not affected. On the embedded broker and on
// Mosquitto with the shipped TLS configuration and per-register ACL.
func TestStoreFacts(t *testing.T) {
	tills := []string{"S001/R1", "S001/R2", "S001/R3", "S002/R1"}
	t.Run("broker=embedded", func(t *testing.T) {
		_, b := embeddedBroker(t, tills...)
		storeFacts(t, b)
	})
	t.Run("broker=mosquitto", func(t *testing.T) {
		storeFacts(t, mosquittoBroker(t, tills...))
	})
}

func storeFacts(t *testing.T, b tillBroker) {
	r1 := startTill(t, b, "S001", "R1")
	// R2 reads its scanner on a pty: the carton and crew tries scan there.
	r2, scanner := startPTYTill(t, b, "S001", "R2")
	r3 := startTill(t, b, "S001", "R3")
	other := startTill(t, b, "S002", "R1")

	t.Run("PG1 screenshot at the next till", func(t *testing.T) {
		tok := r1.f.mint("acct-shot", nil)
		if res, _ := r1.decide(t, tok, line(onigiri, 1)); res.Outcome != policy.Allow {
			t.Fatalf("R1: %+v", res)
		}
		r2.caughtUp(t, r1)
		res, _ := r2.decide(t, tok, line(onigiri, 1))
		wantRefused(t, "the same token at R2", res, "replayed")
		// Another store shares nothing with S001: the token is new there.
		if res, _ := other.decide(t, tok, line(onigiri, 1)); res.Outcome != policy.Allow {
			t.Fatalf("S002: %+v", res)
		}
	})

	t.Run("EMV clone with a lower counter", func(t *testing.T) {
		first, err := token.MintEMV(token.EMVSample{PAN: "5413330089020011", ATC: 5})
		if err != nil {
			t.Fatal(err)
		}
		clone, err := token.MintEMV(token.EMVSample{PAN: "5413330089020011", ATC: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res, _ := r1.decide(t, first, line(onigiri, 1)); res.Outcome != policy.Allow {
			t.Fatalf("ATC 5 at R1: %s %+v", res.Outcome, res.Decision.Rules)
		}
		r2.caughtUp(t, r1)
		res, _ := r2.decide(t, clone, line(onigiri, 1))
		wantRefused(t, "ATC 3 at R2", res, "atc_replayed")
		if res, _ := other.decide(t, clone, line(onigiri, 1)); res.Outcome != policy.Allow {
			t.Fatalf("ATC 3 at S002: %+v", res)
		}
	})

	// Customers alternate R1 (over HTTP) and R2 (at its scanner), one
	// carton a sale; each waits for the other till to know the sale
	// before it, as the next customer in a store would.
	alternate := func(t *testing.T, sales []string, want func(i int) (policy.Outcome, string)) {
		t.Helper()
		for i, acct := range sales {
			tok := r1.f.mint(acct, nil)
			outcome, rule := want(i + 1)
			var got agent.Result
			if i%2 == 0 {
				got, _ = r1.decide(t, tok, line(carton, 1))
				r2.caughtUp(t, r1)
			} else {
				got = scanner.sell(t, tok, outcome, carton)
				r1.caughtUp(t, r2)
			}
			if got.Outcome != outcome || rule != "" && !slices.Contains(fired(got), rule) {
				t.Fatalf("sale %d (%s): %s %v, want %s by %q", i+1, acct, got.Outcome, fired(got), outcome, rule)
			}
		}
	}

	// One account, four sales: account-velocity (3 sales in 24h) counts
	// the sales of both tills, so the 4th is held as it would be on one
	// till.
	t.Run("one account, four cartons, alternating tills", func(t *testing.T) {
		alternate(t, slices.Repeat([]string{"acct-cartons"}, 4), func(i int) (policy.Outcome, string) {
			if i == 4 {
				return policy.Review, "account-velocity"
			}
			return policy.Allow, ""
		})
	})

	// A crew of 8 accounts: register-accounts (3 accounts in 30m) counts
	// the store. The carton buyer above is one of the 3, so the first two
	// of the crew are allowed and the rest refused; per till it would have
	// been 3 at each.
	t.Run("a crew alternating tills", func(t *testing.T) {
		crew := make([]string, 8)
		for i := range crew {
			crew[i] = fmt.Sprintf("crew-%d", i+1)
		}
		alternate(t, crew, func(i int) (policy.Outcome, string) {
			if i > 2 {
				return policy.Deny, "register-accounts"
			}
			return policy.Allow, ""
		})
	})

	t.Run("a till that was off catches up", func(t *testing.T) {
		if err := r3.stop(); err != nil {
			t.Fatal(err)
		}
		tok := r1.f.mint("acct-while-off", nil)
		if res, _ := r1.decide(t, tok, line(onigiri, 1)); res.Outcome != policy.Allow {
			t.Fatalf("R1: %+v", res)
		}
		// R1's fact has left it: the broker holds it in R3's session.
		waitFor(t, "R1's facts to reach the broker", func() bool { return r1.status(t).HQ.Peers.Pending == 0 })
		r3.restart(t)
		r3.caughtUp(t, r1)
		res, _ := r3.decide(t, tok, line(onigiri, 1))
		wantRefused(t, "the token at the restarted R3", res, "replayed")
	})

	if p := other.status(t).HQ.Peers; p == nil || !p.LastFactAt.IsZero() {
		t.Errorf("S002 applied facts of S001: %+v", p)
	}
}

// sell scans items and then tok at the till's scanner, waits for the beep
// that outcome want gives, and returns the decision the till recorded. A
// held sale is rejected with the manager PIN, so the next customer starts
// afresh. Failures are reported to t, the subtest that sells.
func (r *ptyRig) sell(t *testing.T, tok string, want policy.Outcome, items ...string) agent.Result {
	t.Helper()
	parent := r.t
	r.t = t
	defer func() { r.t = parent }()
	frames := make([]string, len(items))
	for i, jan := range items {
		r.scan(scan.EAN13, jan)
		frames[i] = posItem(jan)
	}
	r.posGets(frames...)
	r.scan(scan.QR, tok)
	switch want {
	case policy.Allow:
		r.posGets(posToken(tok))
		r.feedback(fbGood)
	case policy.Review:
		r.feedback(fbReview)
	default:
		r.feedback(fbDeny)
	}
	ev := r.lastEvent()
	if want == policy.Review {
		if code, body := r.resolve(r.t, ev.SaleID, "reject", testPIN); code != http.StatusOK {
			r.t.Fatalf("reject: %d %s", code, body)
		}
		r.feedback(fbDeny)
	}
	r.posQuiet()
	return agent.Result{Outcome: ev.Decision.Outcome, Decision: *ev.Decision}
}

// A till whose broker goes away cannot reach its peers: it decides on the
// facts it already has and, once the link has been down for
// hq.offlineAfter, with the policy's offline limits, and its status says
// the peers are unreachable.
func TestPeersUnreachable(t *testing.T) {
	const (
		sticksCarton = "4901234000315" // e-cigarette, 5800
		sticksPack   = "4901234000308" // e-cigarette, 580
	)
	b, tb := embeddedBroker(t, "S001/R1", "S001/R2")
	r1 := startTillWith(t, tb, "S001", "R1", "  offlineAfter: 300ms\n")
	r2 := startTill(t, tb, "S001", "R2")

	spent := r1.f.mint("acct-before-cut", nil)
	if res, _ := r2.decide(t, spent, line(onigiri, 1)); res.Outcome != policy.Allow {
		t.Fatalf("R2: %+v", res)
	}
	r1.caughtUp(t, r2)
	// ¥6,380 of heat sticks: within the rules, over the offline limit.
	res, _ := r1.decide(t, r1.f.mint("acct-online", nil), line(sticksCarton, 1), line(sticksPack, 1))
	if res.Outcome != policy.Allow || res.Decision.Offline {
		t.Fatalf("online: %s offline=%v %+v", res.Outcome, res.Decision.Offline, res.Decision.Rules)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "R1 to go offline", func() bool {
		hq := r1.status(t).HQ
		return hq.Offline && hq.Peers != nil && !hq.Peers.Reachable
	})
	res, _ = r1.decide(t, r1.f.mint("acct-offline", nil), line(sticksCarton, 1), line(sticksPack, 1))
	if res.Outcome != policy.Review || !res.Decision.Offline || !slices.Contains(fired(res), "offline:e-cigarette") {
		t.Fatalf("offline: %s offline=%v %v", res.Outcome, res.Decision.Offline, fired(res))
	}
	// What R1 learned from R2 before the cut still holds.
	res, _ = r1.decide(t, spent, line(onigiri, 1))
	wantRefused(t, "R2's token at R1 while offline", res, "replayed")
}

// A till connected to a broker that refuses it its store's facts (an ACL
// not updated for them) shares nothing with its peers although HQ's link
// is up: past hq.offlineAfter it applies the offline limits too.
func TestPeersRefused(t *testing.T) {
	b := brokertest.StartRefusing(t, func(topic string, write bool) bool {
		return !write && topic == wire.FactsFilter("S001")
	})
	f := newFixture(t)
	r := start(t, f.config("hq:\n  broker: "+b.URL()+"\n  offlineAfter: 300ms\n"), agent.Options{})
	var st agent.Status
	waitFor(t, "R1 to go offline", func() bool {
		r.do(t, "GET", "/v1/status", nil, &st)
		return st.HQ.Offline
	})
	if !st.HQ.Connected || st.HQ.Peers == nil || st.HQ.Peers.Reachable {
		t.Fatalf("status %+v peers %+v, want connected, peers unreachable", st.HQ, st.HQ.Peers)
	}
	res, _ := r.decide(t, f.mint("acct-refused", nil), line(carton, 2))
	if !res.Decision.Offline || !slices.Contains(fired(res), "offline:tobacco-carton") {
		t.Fatalf("decision %s offline=%v %v", res.Outcome, res.Decision.Offline, fired(res))
	}
}
