package cases

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
)

var t0 = time.Date(2026, 7, 4, 10, 0, 0, 0, time.UTC)

func TestStateMachine(t *testing.T) {
	states := []string{store.CaseOpen, store.CaseConfirmedFraud, store.CaseFalsePositive, store.CaseClosed}
	legal := map[[2]string]bool{
		{store.CaseOpen, store.CaseConfirmedFraud}:   true,
		{store.CaseOpen, store.CaseFalsePositive}:    true,
		{store.CaseOpen, store.CaseClosed}:           true,
		{store.CaseConfirmedFraud, store.CaseClosed}: true,
		{store.CaseFalsePositive, store.CaseClosed}:  true,
	}
	// Every pair, the illegal ones included: a verdict is final, a closed
	// case stays closed, nothing moves to open or to where it is.
	for _, from := range states {
		for _, to := range append(states, "reopened", "") {
			if got := CanMove(from, to); got != legal[[2]string{from, to}] {
				t.Errorf("CanMove(%s, %s) = %v", from, to, got)
			}
		}
	}
}

// lists records the list changes verdicts ask for; HQ's own lists are
// tested with a broker and a register in agent/cases_test.go.
type lists struct {
	deny, allow []store.ListChange
	signing     bool
	fail        error
}

func (l *lists) DenylistChange(_ context.Context, c store.ListChange) (uint64, error) {
	if l.fail != nil {
		return 0, l.fail
	}
	l.deny = append(l.deny, c)
	return uint64(len(l.deny)), nil
}

func (l *lists) AllowlistChange(_ context.Context, c store.ListChange) (uint64, error) {
	l.allow = append(l.allow, c)
	return uint64(len(l.allow)), nil
}

func (l *lists) Signing() bool { return l.signing }

func backends(t *testing.T, f func(t *testing.T, st store.Store)) {
	t.Run("bolt", func(t *testing.T) {
		st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		f(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := store.OpenPostgres(context.Background(), testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		f(t, st)
	})
}

func alert(storeID, account string, n int) event.Event {
	at := t0.Add(time.Duration(n) * time.Minute)
	sale := fmt.Sprintf("sale-%d", n)
	return event.Event{ID: event.ID(storeID, "r1", "e1", uint64(n)), Seq: uint64(n), Type: event.Alert, Store: storeID, Register: "r1", At: at, SaleID: sale,
		Request: &policy.Request{SaleID: sale, Store: storeID, Register: "r1", At: at,
			Payment: policy.Payment{Kind: "pg1", Account: account}},
		Decision: &policy.Decision{Outcome: policy.Deny, Policy: policy.PolicyRef{Name: "p", Version: 1},
			Rules: []policy.Fired{{ID: "carton-cap", Action: "deny", Mode: "enforce", Reason: "tobacco cartons 3 > limit 2"}}}}
}

func TestVerdicts(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		l := &lists{signing: true}
		s := New(st, l, func() time.Time { return t0 })
		crew, err := s.OpenOrExtend(ctx, "crew-1", "S001", alert("S001", "crew-1", 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenOrExtend(ctx, "crew-1", "S002", alert("S002", "crew-1", 2)); err != nil {
			t.Fatal(err)
		}
		out, err := s.Confirm(ctx, crew, "alice (token)", "same crew as S002")
		if err != nil || out.Case.State != store.CaseConfirmedFraud || out.List != "denylist" || out.ListSeq != 1 {
			t.Fatalf("confirm: %+v %v", out, err)
		}
		c := l.deny[0]
		if c.By != "alice (token)" || c.Reason != "same crew as S002" || len(c.Add) != 1 || c.Add[0] != "crew-1" {
			t.Fatalf("denylist change %+v", c)
		}
		if d := c.Details["crew-1"]; d.Rule != "case:"+crew || len(d.Events) != 2 || !d.ExpiresAt.IsZero() {
			t.Fatalf("denylist detail %+v", d)
		}
		// A verdict is final.
		if _, err := s.FalsePositive(ctx, crew, "bob (token)", "oops", time.Time{}, ""); !errors.Is(err, ErrIllegal) {
			t.Fatalf("false positive after confirm: %v", err)
		}
		if _, err := s.Close(ctx, crew, "alice (token)", "done"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Close(ctx, crew, "alice (token)", "done"); !errors.Is(err, ErrIllegal) {
			t.Fatalf("closing twice: %v", err)
		}

		bulk, err := s.OpenOrExtend(ctx, "bulk-buyer", "S014", alert("S014", "bulk-buyer", 3))
		if err != nil {
			t.Fatal(err)
		}
		out, err = s.FalsePositive(ctx, bulk, "bob (cert)", "passed an ID check", time.Time{}, "S014")
		if err != nil || out.Case.State != store.CaseFalsePositive || out.List != "allowlist" {
			t.Fatalf("false positive: %+v %v", out, err)
		}
		a := l.allow[0].Details["bulk-buyer"]
		if !a.ExpiresAt.Equal(t0.Add(DefaultAllowFor)) || a.Rule != "case:"+bulk || a.Reason != "at store S014: passed an ID check" {
			t.Fatalf("allow detail %+v", a)
		}

		// Bad requests change nothing.
		other, err := s.OpenOrExtend(ctx, "acct-x", "S001", alert("S001", "acct-x", 4))
		if err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func() error{
			"no note": func() error { _, err := s.Confirm(ctx, other, "alice", " "); return err },
			"expiry too far": func() error {
				_, err := s.FalsePositive(ctx, other, "a", "n", t0.Add(MaxAllowFor+time.Hour), "")
				return err
			},
			"expiry past":     func() error { _, err := s.FalsePositive(ctx, other, "a", "n", t0.Add(-time.Hour), ""); return err },
			"bad store":       func() error { _, err := s.FalsePositive(ctx, other, "a", "n", time.Time{}, "a/b"); return err },
			"control in note": func() error { _, err := s.Close(ctx, other, "a", "x\x1b[2J"); return err },
			"long note":       func() error { _, err := s.Close(ctx, other, "a", strings.Repeat("x", MaxNoteLen+1)); return err },
		} {
			if err := call(); !errors.Is(err, ErrBadRequest) {
				t.Errorf("%s: err = %v, want ErrBadRequest", name, err)
			}
		}
		if d, _ := s.Case(ctx, other); d.State != store.CaseOpen || len(d.History) != 1 {
			t.Fatalf("a refused request moved the case: %+v", d)
		}
		if _, err := s.Confirm(ctx, "404", "a", "n"); !errors.Is(err, store.ErrCaseNotFound) {
			t.Fatalf("unknown case: %v", err)
		}
		// Without a signing key a verdict that changes a list is refused
		// before the case moves.
		l.signing = false
		if _, err := s.Confirm(ctx, other, "alice", "n"); !errors.Is(err, ErrNoSigner) {
			t.Fatalf("confirm without signer: %v", err)
		}
		// A list change that fails says the case moved and the change
		// must be made by hand.
		l.signing, l.fail = true, errors.New("database gone")
		if _, err := s.Confirm(ctx, other, "alice", "n"); err == nil || !strings.Contains(err.Error(), "make it by hand") {
			t.Fatalf("failed list change: %v", err)
		}
		labels, err := s.Labels(ctx)
		if err != nil || len(labels) != 3 {
			t.Fatalf("labels %+v %v", labels, err)
		}
	})
}

// A store incident is about no account: its verdicts change no list.
func TestStoreIncident(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := &lists{}
	s := New(st, l, func() time.Time { return t0 })
	ctx := context.Background()
	id, opened, err := s.Open(ctx, "", "S014", "alice (token)", "many fresh accounts at S014")
	if err != nil || !opened {
		t.Fatal(opened, err)
	}
	if _, err := s.Confirm(ctx, id, "alice (token)", "crew at S014"); err != nil {
		t.Fatal(err)
	}
	if len(l.deny)+len(l.allow) != 0 {
		t.Fatalf("a store incident changed a list: %+v %+v", l.deny, l.allow)
	}
	if labels, _ := s.Labels(ctx); len(labels) != 0 {
		t.Fatalf("a store incident labels an account: %+v", labels)
	}
	if _, err := s.OpenOrExtend(ctx, "acct", "S014", event.Event{ID: "x", Type: event.Alert}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("an invalid alert: %v", err)
	}
	if _, _, err := s.Open(ctx, "", "", "alice", "n"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a case about nothing: %v", err)
	}
}

// Two HQ instances share one PostgreSQL database: two analysts confirming
// the same case, one on each, and another marking it a false positive: one
// move wins, the others are told the case changed, and one list change is
// made.
func TestTwoInstancesOneVerdict(t *testing.T) {
	url := testenv.PostgresURL(t)
	ctx := context.Background()
	var svcs []*Service
	var ls []*lists
	for range 2 {
		st, err := store.OpenPostgres(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l := &lists{signing: true}
		ls = append(ls, l)
		svcs = append(svcs, New(st, l, func() time.Time { return t0 }))
	}
	// Both instances see the chain's alerts for the account: one case.
	a, err := svcs[0].OpenOrExtend(ctx, "crew-1", "S001", alert("S001", "crew-1", 1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := svcs[1].OpenOrExtend(ctx, "crew-1", "S002", alert("S002", "crew-1", 2))
	if err != nil || b != a {
		t.Fatalf("second instance opened %s (%v), want case %s", b, err, a)
	}
	errs := make(chan error, 3)
	go func() { _, err := svcs[0].Confirm(ctx, a, "alice (token)", "CCTV"); errs <- err }()
	go func() { _, err := svcs[1].Confirm(ctx, a, "bob (token)", "CCTV too"); errs <- err }()
	go func() {
		_, err := svcs[1].FalsePositive(ctx, a, "carol (token)", "ID check", time.Time{}, "")
		errs <- err
	}()
	wins := 0
	for range 3 {
		switch err := <-errs; {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrCaseConflict), errors.Is(err, ErrIllegal):
		default:
			t.Errorf("move: %v", err)
		}
	}
	changes := len(ls[0].deny) + len(ls[0].allow) + len(ls[1].deny) + len(ls[1].allow)
	if wins != 1 || changes != 1 {
		t.Fatalf("%d moves won and %d list changes made, want 1 and 1", wins, changes)
	}
}
