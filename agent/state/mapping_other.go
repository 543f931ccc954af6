//go:build !linux

package state

import bolt "go.etcd.io/bbolt"

// releaseMapping does nothing here: the pages read at open stay mapped
// until the system trims the working set (Windows does under memory
// pressure). The integrity check at open runs the same everywhere.
func releaseMapping(*bolt.DB, *bolt.Tx) {}

// populateFlag: mmap flags are ignored here.
const populateFlag = 0
