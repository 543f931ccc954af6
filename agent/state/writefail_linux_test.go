package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/posguard/posguard/policy"
)

// TestCommitWriteFailure makes the disk refuse writes and checks that Commit
// fails with a wrapped error, that nothing of the failed sale shows in memory
// and that the file holds only what committed.
func TestCommitWriteFailure(t *testing.T) {
	type setup func(t *testing.T, path string) *Store
	tests := []struct {
		name  string
		open  setup
		cause error
	}{
		{
			// bbolt's MaxSize: the file may not grow, as on a full disk.
			name: "file size cap",
			open: func(t *testing.T, path string) *Store {
				opts := testOptions()
				opts.MaxSize = 64 << 10
				return openT(t, path, opts)
			},
			cause: berrors.ErrMaxSizeReached,
		},
		{
			// The real ENOSPC: after Open, the file descriptor bbolt
			// writes through is pointed at /dev/full.
			name: "ENOSPC",
			open: func(t *testing.T, path string) *Store {
				var f *os.File
				opts := testOptions()
				opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
					var err error
					f, err = os.OpenFile(name, flag, perm)
					return f, err
				}
				s := openT(t, path, opts)
				// Grow the file, then free its pages, so the next commits
				// reuse free pages and fail in write(2), not in a remap.
				var ids []string
				for i := range 60 {
					req := newSale(fmt.Sprint("warm", i), "w", t0.Add(-30*24*time.Hour), "tobacco", 1, 100)
					req.Lines[0].JAN = strings.Repeat("4", 400)
					ids = append(ids, commit(t, s, req, policy.Allow).ID)
				}
				if err := s.Ack(ids...); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Prune(t0.Add(30 * 24 * time.Hour)); err != nil {
					t.Fatal(err)
				}
				commit(t, s, newSale("before", "a1", t0, "tobacco", 1, 100), policy.Allow)
				full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
				if err != nil {
					t.Skipf("no /dev/full: %v", err)
				}
				defer full.Close()
				if err := unix.Dup3(int(full.Fd()), int(f.Fd()), 0); err != nil {
					t.Fatal(err)
				}
				return s
			},
			cause: syscall.ENOSPC,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := tc.open(t, path)
			var (
				failed  *policy.Request
				lastErr error
				okIDs   []string
			)
			for i := range 2000 {
				req := newSale(fmt.Sprint("s", i), fmt.Sprint("acct-", i), t0.Add(time.Duration(i)*time.Second), "tobacco", 1, 100)
				req.Lines[0].JAN = strings.Repeat("4", 200) // grow the file fast
				ev, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow), ReplayKey: "k" + req.SaleID})
				if err != nil {
					failed, lastErr = req, err
					break
				}
				okIDs = append(okIDs, ev.ID)
			}
			if failed == nil {
				t.Fatal("writes never failed")
			}
			if !errors.Is(lastErr, tc.cause) || !strings.Contains(lastErr.Error(), "commit sale "+failed.SaleID) {
				t.Fatalf("error %v, want a wrapped %v", lastErr, tc.cause)
			}
			if s.Seen("k"+failed.SaleID) || s.AccountSales(failed.Payment.Account, "shinjuku-01", "", t0, nil).Sales != 0 ||
				s.DistinctAccounts("shinjuku-01", "r2", t0, nil, "") != len(okIDs)+countBefore(tc.name) {
				t.Error("the failed commit shows in memory")
			}
			s.Close()
			// What committed is on disk; the failed sale is not.
			s2 := openT(t, path, testOptions())
			if s2.Seen("k" + failed.SaleID) {
				t.Error("the failed sale's token is marked on disk")
			}
			evs := pending(t, s2)
			if len(evs) != len(okIDs)+countBefore(tc.name) {
				t.Errorf("%d events on disk, want %d", len(evs), len(okIDs)+countBefore(tc.name))
			}
			if len(okIDs) > 0 && evs[len(evs)-1].ID != okIDs[len(okIDs)-1] {
				t.Errorf("last event on disk %s, want %s", evs[len(evs)-1].ID, okIDs[len(okIDs)-1])
			}
			// And the store works again once there is room.
			commit(t, s2, newSale("after", "a9", t0.Add(time.Hour), "tobacco", 1, 100), policy.Allow)
		})
	}
}

// countBefore is the number of sales the ENOSPC setup commits before the
// disk fills.
func countBefore(name string) int {
	if name == "ENOSPC" {
		return 1
	}
	return 0
}
