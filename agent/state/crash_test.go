package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

const crashEnv = "POSGUARD_STATE_CRASH_CHILD"

// TestMain turns the test binary into the process TestSurvivesSIGKILL
// kills when it is started with crashEnv set (a plain helper process, not a
// test that would show up as skipped in every other run).
func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		if os.Getenv(crashEnv+"_DENYLIST") != "" {
			denylistCrashChild(path)
		} else {
			crashChild(path)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild commits sales from 8 goroutines, so commits share
// transactions (group commit), and prints "eventID replayKey" for each only
// after Commit returned — the moment the agent would tell the POS. A kill
// mid-commit loses that commit's whole batch, none of which was printed.
func crashChild(path string) {
	round := os.Getenv(crashEnv + "_ROUND")
	s, err := Open(path, testOptions())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	var (
		wg  sync.WaitGroup
		out sync.Mutex
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 20_000; i += 8 { // bounded in case the parent dies
				req := newSale(fmt.Sprintf("%s-%d", round, i), fmt.Sprint("acct-", i%13), t0.Add(time.Duration(i)*time.Second), "tobacco", 1, 5400)
				o := policy.Allow
				if i%5 == 0 {
					o = policy.Deny
				}
				key := "pg1:" + req.SaleID
				ev, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(o), ReplayKey: key})
				if err != nil {
					fmt.Println("commit:", err)
					os.Exit(3)
				}
				out.Lock()
				fmt.Printf("%s %s\n", ev.ID, key) // os.Stdout is unbuffered
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestSurvivesSIGKILL kills a committing process at random points and
// checks, after each kill, that the file opens cleanly, every commit that
// returned has its outbox event and replay mark, and no token is accepted
// twice.
func TestSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	confirmed := map[string]string{} // event id -> replay key, over all rounds
	for round := range 4 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprint(crashEnv, "_ROUND=r", round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 5 + rng.IntN(60)
		sc := bufio.NewScanner(stdout)
		lines := 0
		for sc.Scan() {
			id, key, ok := strings.Cut(sc.Text(), " ")
			if !ok || !strings.HasPrefix(key, "pg1:") {
				t.Fatalf("child: %s", sc.Text())
			}
			confirmed[id] = key
			lines++
			if lines == killAfter {
				cmd.Process.Kill() // SIGKILL, mid-stream
			}
		}
		err = cmd.Wait()
		var exit *exec.ExitError
		// Unix: death by signal is exit code -1. Windows: Kill is
		// TerminateProcess(h, 1).
		killedCode := killedExitCode()
		if !errors.As(err, &exit) || exit.ExitCode() != killedCode {
			t.Fatalf("round %d: child did not die by the kill: %v", round, err)
		}
		t.Logf("round %d: killed after %d confirmed commits", round, lines)

		s, err := Open(path, testOptions())
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		evs, err := s.Pending(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]bool{}
		sales := map[string]bool{}
		for i, e := range evs {
			stored[e.ID] = true
			if i > 0 && e.Seq <= evs[i-1].Seq {
				t.Fatalf("outbox out of order at %d", e.Seq)
			}
			if e.Type == "decision" {
				if sales[e.SaleID] {
					t.Fatalf("sale %s decided twice", e.SaleID)
				}
				sales[e.SaleID] = true
			}
		}
		for id, key := range confirmed {
			if !stored[id] {
				t.Fatalf("round %d: event %s was confirmed to the POS but is not in the outbox", round, id)
			}
			if !s.Seen(key) {
				t.Fatalf("round %d: token %s was accepted but is not marked", round, key)
			}
		}
		// A confirmed token presented again is refused.
		for _, key := range confirmed {
			req := newSale("replay-"+key, "acct-x", t0, "tobacco", 1, 1)
			if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow), ReplayKey: key}); !errors.Is(err, ErrReplayed) {
				t.Fatalf("round %d: replay of %s after the kill: %v", round, key, err)
			}
			break
		}
		s.Close()
	}
}

// crashDelta is delta seq of the denylist crash test: it adds 100 accounts
// and removes half of the previous delta's.
func crashDelta(seq uint64) (add, remove []string) {
	for i := range 100 {
		add = append(add, fmt.Sprintf("d%d-%d", seq, i))
		if i < 50 && seq > 1 {
			remove = append(remove, fmt.Sprintf("d%d-%d", seq-1, i))
		}
	}
	return add, remove
}

// denylistCrashChild applies denylist deltas after the stored one and
// prints each seq once applied.
func denylistCrashChild(path string) {
	s, err := Open(path, testOptions())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	if s.DenylistSeq() == 0 {
		if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, t0, denyAccounts(50_000)); err != nil {
			fmt.Println("snapshot:", err)
			os.Exit(3)
		}
	}
	for seq := s.DenylistSeq() + 1; seq < 5000; seq++ {
		add, remove := crashDelta(seq)
		if err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: seq}, t0.Add(time.Duration(seq)*time.Second), add, remove); err != nil {
			fmt.Println("delta:", err)
			os.Exit(3)
		}
		fmt.Println(seq)
	}
}

// TestDenylistSurvivesSIGKILL kills a process applying denylist deltas and
// checks after each kill that the reopened list is at or past the last
// delta reported applied and holds exactly the effect of every delta up to
// its version: all of each, none of the next.
func TestDenylistSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for round := range 3 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashEnv+"="+path, crashEnv+"_DENYLIST=1")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 3 + rng.IntN(30)
		sc := bufio.NewScanner(stdout)
		var confirmed uint64
		lines := 0
		for sc.Scan() {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child: %s", sc.Text())
			}
			confirmed = seq
			if lines++; lines == killAfter {
				cmd.Process.Kill()
			}
		}
		var exit *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != killedExitCode() {
			t.Fatalf("round %d: child did not die by the kill: %v", round, err)
		}
		s, err := Open(path, testOptions())
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		at := s.DenylistSeq()
		if at < confirmed {
			t.Fatalf("round %d: list at %d, but delta %d was applied", round, at, confirmed)
		}
		t.Logf("round %d: killed after delta %d, list at %d", round, confirmed, at)
		for seq := uint64(2); seq <= at+1; seq++ {
			add, _ := crashDelta(seq)
			for i, a := range add {
				// Delta seq's accounts: listed once it applied, the first
				// half removed again by seq+1.
				want := seq <= at && (i >= 50 || seq == at)
				if s.Denylisted(a) != want {
					t.Fatalf("round %d: list at %d: %s listed=%v", round, at, a, !want)
				}
			}
		}
		s.Close()
	}
}

// killedExitCode is the exit code Wait reports for a killed child: -1 for
// a signal on Unix; Windows has no signals, and TerminateProcess ends it
// with code 1.
func killedExitCode() int {
	if runtime.GOOS == "windows" {
		return 1
	}
	return -1
}
