package display

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/display/auth"
	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/golden"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/syncbuf"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

func TestStreamSnapshotThenLiveAlert(t *testing.T) {
	r := startRig(t, nil)
	now := time.Now().UTC().Truncate(time.Second)
	// Retained status published before the page connects must be on the
	// board (the display got it on subscribe) and in the snapshot.
	r.publish(wire.StatusTopic(testStore, "R1"), status(testStore, "R1", true, now), true)
	deadline := time.Now().Add(5 * time.Second)
	for len(r.srv.board.Snapshot().Registers) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	p := r.open()
	s := p.stream()
	var snap snapshot
	if err := json.Unmarshal(s.next(t, "snapshot").Data, &snap); err != nil {
		t.Fatal(err)
	}
	if !snap.Broker.Connected || snap.Store != testStore || len(snap.Registers) != 1 || snap.Registers[0].Register != "R1" || !snap.Registers[0].Online {
		t.Fatalf("snapshot = %+v", snap)
	}
	if snap.Registers[0].PolicyVersion != 3 || snap.Registers[0].Scanner != "up" || snap.Registers[0].LastDecision != "allow" {
		t.Errorf("tile = %+v", snap.Registers[0])
	}

	r.publish(wire.AlertsTopic(testStore, "R2"), alertEvent(testStore, "R2", 7, policy.Deny, now), false)
	var a board.Alert
	if err := json.Unmarshal(s.next(t, "alert").Data, &a); err != nil {
		t.Fatal(err)
	}
	want := board.Alert{
		ID: "S001/R2/ep1/7", Register: "R2", At: now, SaleID: "sale-R2-7", Outcome: "deny",
		Rules: []board.Rule{
			{ID: "tobacco-cartons", Action: "deny", Mode: "enforce", Reason: "tobacco cartons 6 > limit 2",
				Text: board.Text{JA: "タバコ(カートン) 6点 > 上限 2点", EN: "tobacco cartons 6 > limit 2"}},
			{ID: "new-device", Action: "score", Mode: "enforce", Reason: "device bound 10m0s before the sale < minimum 24h0m0s", Score: 25,
				Text: board.Text{JA: "端末登録から10分 < 最低 24時間", EN: "device bound 10 min before the sale < minimum 24 h"}},
			{ID: "fresh-topup", Action: "score", Mode: "shadow", Reason: "top-up ¥90,000 12m0s before a ¥34,800 sale (within 1h0m0s)", Score: 35,
				Text: board.Text{JA: "12分前に90,000円チャージ、34,800円の購入（1時間以内）", EN: "¥90,000 top-up 12 min before a ¥34,800 sale (within 1 h)"}},
		},
		Cart: []board.Line{
			{Category: "tobacco-carton", Names: board.Text{JA: "タバコ(カートン)", EN: "tobacco cartons"}, Quantity: 6, Amount: 34800},
			{Category: "drink", Names: board.Text{JA: "飲料", EN: "drinks"}, Quantity: 2, Amount: 300},
		},
		Amount:      35100,
		Account:     "…9c21",
		Score:       25,
		ShadowScore: 35,
	}
	gotJSON, _ := json.Marshal(a)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("alert\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if strings.Contains(string(gotJSON), "7f3a9c21") {
		t.Error("full account reached the page")
	}

	// A status change arrives as a register update.
	r.publish(wire.StatusTopic(testStore, "R1"), status(testStore, "R1", false, now.Add(time.Second)), true)
	var tile board.Tile
	if err := json.Unmarshal(s.next(t, "register").Data, &tile); err != nil {
		t.Fatal(err)
	}
	if tile.Register != "R1" || tile.Online {
		t.Errorf("tile = %+v, want R1 offline", tile)
	}
}

// Another store's messages never reach the page, neither through the broker
// (the subscription) nor by a payload lying about its store or register on
// this store's topic (the check).
func TestOtherStoresNeverAppear(t *testing.T) {
	r := startRig(t, nil)
	now := time.Now().UTC()
	p := r.open()
	s := p.stream()
	s.next(t, "snapshot")

	r.publish(wire.AlertsTopic("S999", "R1"), alertEvent("S999", "R1", 1, policy.Deny, now), false)
	r.publish(wire.StatusTopic("S999", "R1"), status("S999", "R1", true, now), true)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent("S999", "R1", 2, policy.Deny, now), false)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R9", 3, policy.Deny, now), false)
	r.publish(wire.StatusTopic(testStore, "R1"), status("S999", "R1", true, now), true)
	// The marker: once it arrives, everything published before it has
	// been processed (one broker, one subscription, in order).
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 4, policy.Review, now), false)

	m := s.next(t, "alert", "register")
	var a board.Alert
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatal(err)
	}
	if m.Event != "alert" || a.ID != "S001/R1/ep1/4" {
		t.Fatalf("first update is %s %s, want the marker alert", m.Event, m.Data)
	}
	snap := r.srv.board.Snapshot()
	if len(snap.Alerts) != 1 || len(snap.Registers) != 0 {
		t.Errorf("board holds %d alerts, %d registers; want only the marker", len(snap.Alerts), len(snap.Registers))
	}
}

func TestApplyRejects(t *testing.T) {
	srv, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	resolution := resolutionEvent(testStore, "R1", 2, "sale-R1-1", "approve", now)
	cases := []struct {
		name, topic string
		payload     []byte
		wantErr     string
	}{
		{"other store topic", wire.AlertsTopic("S2", "R1"), js(alertEvent("S2", "R1", 1, policy.Deny, now)), "not this store"},
		{"payload names another store", wire.AlertsTopic(testStore, "R1"), js(alertEvent("S2", "R1", 1, policy.Deny, now)), "on the topic of"},
		{"payload names another register", wire.AlertsTopic(testStore, "R1"), js(alertEvent(testStore, "R2", 1, policy.Deny, now)), "on the topic of"},
		{"status of another register", wire.StatusTopic(testStore, "R1"), js(status(testStore, "R2", true, now)), "on the topic of"},
		{"garbage alert", wire.AlertsTopic(testStore, "R1"), []byte("{"), "parse event"},
		{"garbage status", wire.StatusTopic(testStore, "R1"), []byte("[]"), "status"},
		{"wildcard topic", "posguard/v1/reg/S001/+/alerts", nil, "register id"},
		{"events topic", wire.EventsTopic(testStore, "R1"), nil, "unexpected events topic"},
		{"not a reg topic", "posguard/v1/policy/all", nil, "not under"},
		{"resolution for unknown review is fine", wire.AlertsTopic(testStore, "R1"), js(resolution), ""},
		{"refused resolution for unknown review is fine", wire.AlertsTopic(testStore, "R1"), js(refusalEvent(testStore, "R1", 3, "sale-R1-1", event.CodeWrongPIN, event.RefusedBadPIN, now)), ""},
		{"unknown refusal code", wire.AlertsTopic(testStore, "R1"), js(refusalEvent(testStore, "R1", 3, "sale-R1-1", "wrong_password", event.RefusedBadPIN, now)), `code "wrong_password": want one of`},
		{"policy refusal on the alerts topic", wire.AlertsTopic(testStore, "R1"), js(event.Event{ID: event.ID(testStore, "R1", "ep1", 4), Seq: 4, Type: event.Refusal,
			Store: testStore, Register: "R1", At: now, Detail: "policy bundle refused"}), "refusal without a review"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := srv.apply(c.topic, c.payload)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("apply: err %v, want it to mention %q", err, c.wantErr)
			}
			if snap := srv.board.Snapshot(); len(snap.Alerts)+len(snap.Registers) != 0 {
				t.Fatalf("board changed: %+v", snap)
			}
		})
	}
}

// The full review round trip over a real broker: the page's resolution
// reaches the register's cmd topic in the wire format, the register's
// resolution event comes back and the page shows it resolved.
func TestResolveRoundTrip(t *testing.T) {
	logs := &syncbuf.Buffer{}
	r := startRig(t, func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	cmds := registerClient(t, r.broker.URL(), testStore, "R3")
	now := time.Now().UTC().Truncate(time.Second)
	p := r.open()
	s := p.stream()
	s.next(t, "snapshot")
	r.publish(wire.AlertsTopic(testStore, "R3"), alertEvent(testStore, "R3", 11, policy.Review, now), false)
	var a board.Alert
	json.Unmarshal(s.next(t, "alert").Data, &a)
	if a.State != board.Open || a.ReviewID != "sale-R3-11" || !a.Deadline.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("review alert = %+v", a)
	}

	code, out := p.resolve(ResolveRequest{Register: "R3", ReviewID: a.ReviewID, Action: "approve", PIN: "4711"}, p.csrf)
	if code != http.StatusAccepted || out.Command == "" {
		t.Fatalf("resolve: %d %+v", code, out)
	}
	m, err := recvCmd(cmds, 10*time.Second)
	if err != nil {
		t.Fatal("register got no command")
	}
	cmd, err := wire.ParseCommand(m.Topic(), m.Payload())
	if err != nil {
		t.Fatalf("command does not parse as wire.Command: %v", err)
	}
	if cmd.ID != out.Command || cmd.At.IsZero() {
		t.Errorf("command id %q at %v, page was told %q", cmd.ID, cmd.At, out.Command)
	}
	// The exact wire form, with the random id and the time normalised.
	var generic map[string]any
	json.Unmarshal(m.Payload(), &generic)
	generic["id"], generic["at"] = "ID", "AT"
	got, _ := json.MarshalIndent(generic, "", "  ")
	golden.Check(t, filepath.Join("testdata", "resolve_command.golden.json"), append(got, '\n'))

	var sent board.Alert
	json.Unmarshal(s.next(t, "alert").Data, &sent)
	if sent.State != board.Sent {
		t.Errorf("after sending, state = %q, want sent", sent.State)
	}

	r.publish(wire.AlertsTopic(testStore, "R3"), resolutionEvent(testStore, "R3", 12, a.ReviewID, "approve", now.Add(30*time.Second)), false)
	var done board.Alert
	json.Unmarshal(s.next(t, "alert").Data, &done)
	if done.ID != a.ID || done.State != board.Approved || done.ResolvedBy != "manager-tanaka" {
		t.Errorf("after the register's resolution: %+v", done)
	}
	// The PIN went to the register and nowhere else.
	if l := logs.String(); strings.Contains(l, "4711") || !strings.Contains(l, "resolution sent") {
		t.Errorf("logs show the PIN or miss the resolution:\n%s", l)
	}
	// A resolved review takes no more resolutions.
	if code, _ := p.resolve(ResolveRequest{Register: "R3", ReviewID: a.ReviewID, Action: "reject", PIN: "4711"}, p.csrf); code != http.StatusConflict {
		t.Errorf("resolving a finished review: %d, want 409", code)
	}
}

// The register refuses a resolution (wrong PIN, then too many, ...): the
// page hears why at once, from the refusal's code and never its sentence,
// the review is open again for another try, and a page opened later gets
// the same from its snapshot.
func TestRegisterRefusesResolution(t *testing.T) {
	r := startRig(t, func(c *Config) { c.ResolveLimit = 20 })
	cmds := registerClient(t, r.broker.URL(), testStore, "R2")
	now := time.Now().UTC().Truncate(time.Second)
	p := r.open()
	s := p.stream()
	s.next(t, "snapshot")
	r.publish(wire.AlertsTopic(testStore, "R2"), alertEvent(testStore, "R2", 5, policy.Review, now), false)
	var a board.Alert
	json.Unmarshal(s.next(t, "alert").Data, &a)
	if a.State != board.Open || a.ReviewID == "" {
		t.Fatalf("review alert = %+v", a)
	}
	seq := uint64(6)
	cases := []struct {
		code        event.Code
		why, detail string
	}{
		{event.CodeWrongPIN, event.RefusedBadPIN, board.BadPIN},
		{event.CodeNoPINs, event.RefusedNoPINs, board.NoPINs},
		{event.CodeUnknownReview, "no such review", board.UnknownReview},
		{event.CodeAlreadyResolved, "review already resolved", board.AlreadyEnded},
		// The code decides, whatever the sentence says.
		{event.CodeWrongPIN, event.RefusedRateLimited, board.BadPIN},
		// A register built before codes: a refusal, reason unknown.
		{"", event.RefusedBadPIN, board.Refused},
		{event.CodeRateLimited, event.RefusedRateLimited, board.RateLimited},
		// The third wrong PIN from this page's device: its last.
		{event.CodePINGuessing, "5 wrong PINs for this review; " + event.RefusedPINGuessing, board.PINGuessing},
	}
	if len(cases) != len(event.Codes())+2 {
		t.Fatalf("%d cases for %d codes: test every code", len(cases), len(event.Codes()))
	}
	for _, c := range cases {
		if code, out := p.resolve(ResolveRequest{Register: "R2", ReviewID: a.ReviewID, Action: "approve", PIN: "0000"}, p.csrf); code != http.StatusAccepted {
			t.Fatalf("resolve: %d %+v", code, out)
		}
		if _, err := recvCmd(cmds, 10*time.Second); err != nil {
			t.Fatal("register got no command")
		}
		var sent board.Alert
		json.Unmarshal(s.next(t, "alert").Data, &sent)
		if sent.State != board.Sent || sent.Detail != "" {
			t.Fatalf("after sending: %+v", sent)
		}
		r.publish(wire.AlertsTopic(testStore, "R2"), refusalEvent(testStore, "R2", seq, a.ReviewID, c.code, c.why, now.Add(time.Second)), false)
		seq++
		var back board.Alert
		json.Unmarshal(s.next(t, "alert").Data, &back)
		if back.ID != a.ID || back.State != board.Open || back.Detail != c.detail {
			t.Fatalf("after the register refused (%q: %s): state %q detail %q, want open %q", c.code, c.why, back.State, back.Detail, c.detail)
		}
	}
	var snap struct{ Alerts []board.Alert }
	json.Unmarshal(r.open().stream().next(t, "snapshot").Data, &snap)
	if len(snap.Alerts) != 1 || snap.Alerts[0].State != board.Open || snap.Alerts[0].Detail != board.PINGuessing {
		t.Fatalf("snapshot after the refusals: %+v", snap.Alerts)
	}
	// A refusal for a review no longer pending changes nothing.
	r.publish(wire.AlertsTopic(testStore, "R2"), resolutionEvent(testStore, "R2", seq, a.ReviewID, "reject", now.Add(2*time.Second)), false)
	var done board.Alert
	json.Unmarshal(s.next(t, "alert").Data, &done)
	r.publish(wire.AlertsTopic(testStore, "R2"), refusalEvent(testStore, "R2", seq+1, a.ReviewID, event.CodeWrongPIN, event.RefusedBadPIN, now.Add(3*time.Second)), false)
	// Messages are applied in order: once this status shows, so has the
	// refusal.
	mark := now.Add(time.Hour)
	r.publish(wire.StatusTopic(testStore, "R2"), status(testStore, "R2", true, mark), false)
	for {
		var tile board.Tile
		json.Unmarshal(s.next(t, "register").Data, &tile)
		if tile.At.Equal(mark) {
			break
		}
	}
	if got := r.srv.board.Snapshot().Alerts[0]; done.State != board.Rejected || got.State != board.Rejected {
		t.Fatalf("refusal after the resolution: %+v", got)
	}
}

func TestResolveRefusals(t *testing.T) {
	r := startRig(t, func(c *Config) { c.ResolveLimit = 8 })
	now := time.Now().UTC()
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Review, now), false)
	r.waitPending("R1", "sale-R1-1")
	p := r.open()
	good := ResolveRequest{Register: "R1", ReviewID: "sale-R1-1", Action: "approve", PIN: "1234"}
	with := func(f func(*ResolveRequest)) ResolveRequest { q := good; f(&q); return q }
	cases := []struct {
		name string
		req  ResolveRequest
		csrf string
		want int
	}{
		{"no csrf", good, "", http.StatusForbidden},
		{"wrong csrf", good, "x" + p.csrf, http.StatusForbidden},
		{"pin with letters", with(func(q *ResolveRequest) { q.PIN = "12a4" }), p.csrf, http.StatusBadRequest},
		{"pin too short", with(func(q *ResolveRequest) { q.PIN = "12" }), p.csrf, http.StatusBadRequest},
		{"bad action", with(func(q *ResolveRequest) { q.Action = "maybe" }), p.csrf, http.StatusBadRequest},
		{"bad register id", with(func(q *ResolveRequest) { q.Register = "R/1" }), p.csrf, http.StatusBadRequest},
		{"unknown review", with(func(q *ResolveRequest) { q.ReviewID = "nope" }), p.csrf, http.StatusConflict},
		{"review of another register", with(func(q *ResolveRequest) { q.Register = "R2" }), p.csrf, http.StatusConflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, out := p.resolve(c.req, c.csrf); code != c.want {
				t.Errorf("status %d (%s), want %d", code, out.Error, c.want)
			}
		})
	}
	// A form post (what a cross-site page could send) is refused.
	res, err := p.c.Post(r.base+"/api/resolve", "text/plain", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("text/plain without csrf: %d, want 403", res.StatusCode)
	}
	// Each attempt is a PIN guess at the register: after the limit (8 a
	// minute, 6 used above after the CSRF check) the client is refused.
	var codes []int
	for i := 0; i < 4; i++ {
		code, _ := p.resolve(with(func(q *ResolveRequest) { q.ReviewID = "nope" }), p.csrf)
		codes = append(codes, code)
	}
	if codes[0] != http.StatusConflict || codes[2] != http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests {
		t.Errorf("codes past the limit = %v, want 409 409 429 429", codes)
	}
}

func TestLoginAndCSRFBeyondLoopback(t *testing.T) {
	if _, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, Listen: "0.0.0.0:8090"}); err == nil || !strings.Contains(err.Error(), "requires a password hash") {
		t.Fatalf("New beyond loopback without hash: %v", err)
	}
	if _, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, Listen: "0.0.0.0:8090", PasswordHash: "plain"}); err == nil || !strings.Contains(err.Error(), "bcrypt") {
		t.Fatalf("New with a non-bcrypt hash: %v", err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("store-pass"), bcrypt.MinCost)
	r := startRig(t, func(c *Config) { c.Listen = "0.0.0.0:8090"; c.PasswordHash = string(hash) })
	jar, _ := cookiejar.New(nil)
	noFollow := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	get := func(path string) *http.Response {
		res, err := noFollow.Get(r.base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get("/"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("GET / before login: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res := get("/events"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /events before login: %d", res.StatusCode)
	}
	login := func(pw string) *http.Response {
		res, err := noFollow.PostForm(r.base+"/login", url.Values{"password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := login("wrong"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	res := login("store-pass")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("right password: %d", res.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == auth.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie = %+v, want HttpOnly SameSite=Strict", cookie)
	}
	p := &page{t: t, c: noFollow, base: r.base}
	res2, err := noFollow.Get(r.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res2.Body)
	res2.Body.Close()
	m := csrfRe.FindSubmatch(body)
	if res2.StatusCode != 200 || m == nil {
		t.Fatalf("GET / after login: %d", res2.StatusCode)
	}
	p.csrf = string(m[1])
	if code, _ := p.resolve(ResolveRequest{Register: "R1", ReviewID: "x", Action: "approve", PIN: "1234"}, ""); code != http.StatusForbidden {
		t.Errorf("resolve without csrf after login: %d, want 403", code)
	}
	if code, _ := p.resolve(ResolveRequest{Register: "R1", ReviewID: "x", Action: "approve", PIN: "1234"}, p.csrf); code != http.StatusConflict {
		t.Errorf("resolve with csrf after login: %d, want 409 (no such review)", code)
	}
	// Cross-origin POSTs are refused whatever they carry.
	req, _ := http.NewRequest("POST", r.base+"/login", strings.NewReader("password=store-pass"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if res, err := noFollow.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin login: %v %v", res.StatusCode, err)
	}
}

// Bound to loopback, the display answers only to loopback host names, so a
// web page that rebinds its own name to 127.0.0.1 cannot read it.
func TestLoopbackHostCheck(t *testing.T) {
	r := startRig(t, nil)
	for host, want := range map[string]int{"evil.example": http.StatusMisdirectedRequest, "127.0.0.1:8090": 200, "localhost": 200, "[::1]:8090": 200} {
		req, _ := http.NewRequest("GET", r.base+"/", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, res.StatusCode, want)
		}
	}
}

func TestPageLanguage(t *testing.T) {
	r := startRig(t, nil)
	cases := []struct{ accept, query, wantLang, wantText string }{
		{"", "", "ja", "店舗アラート"},
		{"en-US,en;q=0.9", "", "en", "store alerts"},
		{"ja,en;q=0.5", "", "ja", "店舗アラート"},
		{"fr-FR", "", "ja", "店舗アラート"},
		{"ja", "en", "en", "store alerts"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", r.base+"/?lang="+c.query, nil)
		req.Header.Set("Accept-Language", c.accept)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), `<html lang="`+c.wantLang+`">`) || !strings.Contains(string(b), c.wantText) {
			t.Errorf("Accept-Language %q ?lang=%q: want lang %s with %q", c.accept, c.query, c.wantLang, c.wantText)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("CSP = %q", csp)
		}
	}
}

// TestAlertNamesFallBack: a decision from a register that predates reason
// codes and category names still shows its sentence and category ids.
func TestAlertNamesFallBack(t *testing.T) {
	ev := alertEvent(testStore, "R1", 1, policy.Review, time.Now())
	ev.Decision.Categories = nil
	for i := range ev.Decision.Rules {
		ev.Decision.Rules[i].Reasons = nil
	}
	a := alertFrom(ev, time.Minute)
	if a.Rules[0].Text.JA != "tobacco cartons 6 > limit 2" || a.Cart[0].Names.JA != "tobacco-carton" || a.Cart[1].Names.EN != "drink" {
		t.Errorf("old decision: rules %+v cart %+v", a.Rules, a.Cart)
	}
}

// With the broker gone the resolution cannot reach the register: the page
// is told so (503) and the review stays open, not "sent".
func TestResolveWhileBrokerDown(t *testing.T) {
	r := startRig(t, nil)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Review, time.Now().UTC()), false)
	r.waitPending("R1", "sale-R1-1")
	p := r.open()
	r.broker.Stop()
	r.waitBroker(false)
	code, out := p.resolve(ResolveRequest{Register: "R1", ReviewID: "sale-R1-1", Action: "reject", PIN: "1234"}, p.csrf)
	if code != http.StatusServiceUnavailable || !strings.Contains(out.Error, "broker not connected") {
		t.Fatalf("resolve with broker down: %d %q", code, out.Error)
	}
	if a := r.srv.board.Snapshot().Alerts[0]; a.State != board.Open {
		t.Fatalf("state %q after a failed send, want open", a.State)
	}
}

// A register that cannot share facts with its peers says so on its tile;
// one that predates store facts (no peers in its status) does not, nor one
// that is offline (its tile says offline already).
func TestTilePeersUnreachable(t *testing.T) {
	at := time.Now()
	for _, tc := range []struct {
		name   string
		online bool
		peers  *wire.Peers
		want   bool
	}{
		{"sharing", true, &wire.Peers{Reachable: true}, false},
		{"unreachable", true, &wire.Peers{Reachable: false}, true},
		{"older register", true, nil, false},
		{"offline", false, &wire.Peers{Reachable: false}, false},
	} {
		st := status(testStore, "R1", tc.online, at)
		st.Peers = tc.peers
		if got := tileFrom(st).PeersUnreachable; got != tc.want {
			t.Errorf("%s: peersUnreachable %v, want %v", tc.name, got, tc.want)
		}
	}
}
