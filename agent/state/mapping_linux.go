package state

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// populateFlag maps the whole file at open (MAP_POPULATE): the check at
// open reads every page, and one call costs less than a fault per page.
const populateFlag = syscall.MAP_POPULATE

// releaseMapping drops the state file's pages from this process's resident
// memory: madvise(MADV_DONTNEED) over bbolt's read-only shared mapping of
// the file. The pages stay in the kernel's page cache and are mapped again
// on the next read, so nothing changes but the process's RSS. The open tx
// holds bbolt's mapping lock, so the mapping cannot move meanwhile; its
// extent is read from /proc/self/maps (bbolt does not export it, and the
// file may be longer than the mapping). It is best effort: without the
// extent the pages stay resident, as on other systems.
func releaseMapping(db *bolt.DB, _ *bolt.Tx) {
	base := db.Info().Data
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		span, _, _ := strings.Cut(sc.Text(), " ")
		lo, hi, ok := strings.Cut(span, "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || uintptr(start) != base || end <= start {
			continue
		}
		syscall.Syscall(syscall.SYS_MADVISE, base, uintptr(end-start), syscall.MADV_DONTNEED)
		return
	}
}
