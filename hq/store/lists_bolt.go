package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// kDenyRecords marks a file whose denylist entries name their records.
var kDenyRecords = []byte("denylist_records")

// initLists makes the denylist entries of a file from before they named
// the record of the change that added them name it, from the records.
func initLists(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	if meta.Get(kDenyRecords) != nil {
		return nil
	}
	latest := map[string]event.Event{}
	err := listRecords(tx, event.DenylistChanged, func(ev event.Event) error {
		for _, a := range ev.Denylist.Add {
			if old, ok := latest[a]; !ok || CursorOf(old).place(ev) > 0 {
				latest[a] = ev
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	list := tx.Bucket(bDenylist)
	for a, ev := range latest {
		if v := list.Get([]byte(a)); v != nil && len(v) == 0 {
			if err := list.Put([]byte(a), []byte(ev.ID)); err != nil {
				return err
			}
		}
	}
	return meta.Put(kDenyRecords, []byte{1})
}

// listRecords calls f with each stored record of a change to the list of
// type t. Their ids share the prefix hq/{type}/, so the events' key order
// finds them without a scan of the other events.
func listRecords(tx *bolt.Tx, t event.Type, f func(event.Event) error) error {
	p := []byte(event.HQStore + "/" + string(t) + "/")
	c := tx.Bucket(bEvents).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		ev, err := event.Parse(v)
		if err != nil {
			return fmt.Errorf("event %s: %w", k, err)
		}
		if ev.Type != t || ChangeInfo(ev) == nil {
			continue
		}
		if err := f(ev); err != nil {
			return err
		}
	}
	return nil
}

// seekList calls f with the entries of list b matching q, by account,
// until f has taken q's limit.
func seekList(b *bolt.Bucket, q ListQuery, f func(account string, v []byte) error) error {
	start := []byte(q.Prefix)
	if q.After >= q.Prefix {
		start = append([]byte(q.After), 0)
	}
	c := b.Cursor()
	n := 0
	for k, v := c.Seek(start); k != nil && n < q.limit(); k, v = c.Next() {
		if !bytes.HasPrefix(k, []byte(q.Prefix)) {
			break
		}
		if err := f(string(k), v); err != nil {
			return err
		}
		n++
	}
	return nil
}

func (s *Bolt) DenylistEntries(ctx context.Context, q ListQuery) ([]ListEntry, error) {
	out := []ListEntry{}
	err := s.db.View(func(tx *bolt.Tx) error {
		events, details := tx.Bucket(bEvents), tx.Bucket(bDenyDetails)
		return seekList(tx.Bucket(bDenylist), q, func(a string, rec []byte) error {
			e := ListEntry{Account: a}
			if v := events.Get(rec); len(rec) > 0 && v != nil {
				ev, err := event.Parse(v)
				if err != nil {
					return fmt.Errorf("%s: record %s: %w", a, rec, err)
				}
				e.Added = ev.At.UTC()
				if d := ev.Denylist; d != nil {
					e.By, e.Reason, e.Seq = d.By, d.Reason, d.Seq
				}
			}
			if details != nil {
				if v := details.Get([]byte(a)); v != nil {
					if err := json.Unmarshal(v, &e.Detail); err != nil {
						return fmt.Errorf("%s: detail: %w", a, err)
					}
				}
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read denylist entries: %w", err)
	}
	return out, nil
}

func (s *Bolt) AllowlistEntries(ctx context.Context, q ListQuery) ([]ListEntry, error) {
	out := []ListEntry{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return seekList(tx.Bucket(bAllowlist), q, func(a string, v []byte) error {
			var e allowEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
			out = append(out, ListEntry{Account: a, Added: e.Added.UTC(), By: e.By, Reason: e.Reason, Detail: e.Detail})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read allowlist entries: %w", err)
	}
	return out, nil
}

// ListChanges reads every record of the lists asked for (a bbolt file is
// one machine's: its lists change thousands of times, not millions), then
// keeps the page.
func (s *Bolt) ListChanges(ctx context.Context, q AuditQuery) ([]event.Event, error) {
	var all []event.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, t := range ListChangeTypes {
			if q.Type != "" && q.Type != t {
				continue
			}
			err := listRecords(tx, t, func(ev event.Event) error {
				if !q.Before.IsZero() && q.Before.place(ev) >= 0 {
					return nil
				}
				if q.Account == "" || names(ev, q.Account) {
					all = append(all, ev)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read list changes: %w", err)
	}
	slices.SortFunc(all, func(a, b event.Event) int { return -compareEvents(a, b) })
	return all[:min(len(all), pageLimit(q.Limit))], nil
}

// compareEvents orders events by (at, id), as PostgreSQL does.
func compareEvents(a, b event.Event) int {
	return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID))
}

func (s *Bolt) CaseAlerts(ctx context.Context, id string, q CaseAlertQuery) ([]event.Event, error) {
	n, err := parseCaseID(id)
	if err != nil {
		return nil, err
	}
	var all []event.Event
	err = s.db.View(func(tx *bolt.Tx) error {
		k := caseKey(n)
		if tx.Bucket(bCases).Get(k) == nil {
			return ErrCaseNotFound
		}
		cur := tx.Bucket(bCaseAlerts).Cursor()
		for ek, v := cur.Seek(k); ek != nil && bytes.HasPrefix(ek, k); ek, v = cur.Next() {
			ev, err := event.Parse(v)
			if err != nil {
				return fmt.Errorf("alert %s: %w", ek[8:], err)
			}
			if q.After.IsZero() || q.After.place(ev) > 0 {
				all = append(all, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read alerts of case %s: %w", id, err)
	}
	slices.SortFunc(all, compareEvents)
	return all[:min(len(all), pageLimit(q.Limit))], nil
}

func (s *Bolt) EventsByID(ctx context.Context, ids []string) ([]event.Event, error) {
	out := []event.Event{}
	err := s.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bEvents)
		for _, id := range ids {
			v := events.Get([]byte(id))
			if v == nil {
				continue
			}
			ev, err := event.Parse(v)
			if err != nil {
				return fmt.Errorf("event %s: %w", id, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events by id: %w", err)
	}
	return out, nil
}

func (s *Bolt) ListVersion(ctx context.Context, t event.Type) (wire.ListVersion, error) {
	kEpoch, kSeq := kEpoch, kDenySeq
	if t == AllowlistChanged {
		kEpoch, kSeq = kAllowEpoch, kAllowSeq
	}
	var v wire.ListVersion
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		v.Epoch = string(meta.Get(kEpoch))
		if b := meta.Get(kSeq); len(b) == 8 {
			v.Seq = binary.BigEndian.Uint64(b)
		}
		return nil
	})
	if err != nil {
		return v, fmt.Errorf("read %s version: %w", t, err)
	}
	return v, nil
}
