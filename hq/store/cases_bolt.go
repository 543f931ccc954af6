package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

var (
	bCases       = []byte("cases")        // id (8 bytes, big endian) → Case JSON
	bCaseOpen    = []byte("cases_open")   // subject → id of its open case
	bCaseAlerts  = []byte("case_alerts")  // id + event id → event JSON
	bAlertCase   = []byte("alert_case")   // event id → case id (8 bytes)
	bCaseHistory = []byte("case_history") // id + change number (8 bytes each) → CaseChange JSON
	bAllowlist   = []byte("allowlist")    // account → allowEntry JSON
	kAllowSeq    = []byte("allowlist_seq")
	kAllowEpoch  = []byte("allowlist_epoch") // the allowlist's own epoch
)

// initCases makes the cases' and the allowlist's buckets and the
// allowlist's epoch in a file that has none yet.
func initCases(tx *bolt.Tx) error {
	for _, b := range [][]byte{bCases, bCaseOpen, bCaseAlerts, bAlertCase, bCaseHistory, bAllowlist} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if meta := tx.Bucket(bMeta); meta.Get(kAllowEpoch) == nil {
		return meta.Put(kAllowEpoch, []byte(rand.Text()))
	}
	return nil
}

func caseKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func parseCaseID(id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("case %q: %w", id, ErrCaseNotFound)
	}
	return n, nil
}

func getCase(tx *bolt.Tx, k []byte) (Case, error) {
	v := tx.Bucket(bCases).Get(k)
	if v == nil {
		return Case{}, ErrCaseNotFound
	}
	var c Case
	if err := json.Unmarshal(v, &c); err != nil {
		return Case{}, fmt.Errorf("case %d: %w", binary.BigEndian.Uint64(k), err)
	}
	return c, nil
}

func putCase(tx *bolt.Tx, k []byte, c Case) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return tx.Bucket(bCases).Put(k, b)
}

func putChange(tx *bolt.Tx, k []byte, ch CaseChange) error {
	h := tx.Bucket(bCaseHistory)
	n, err := h.NextSequence()
	if err != nil {
		return err
	}
	b, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	return h.Put(binary.BigEndian.AppendUint64(bytes.Clone(k), n), b)
}

func (s *Bolt) OpenOrExtendCase(ctx context.Context, n NewCase) (string, bool, error) {
	var id uint64
	var opened bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		id, opened = 0, false
		if n.Alert != nil {
			if v := tx.Bucket(bAlertCase).Get([]byte(n.Alert.ID)); len(v) == 8 {
				id = binary.BigEndian.Uint64(v)
				return nil
			}
		}
		open := tx.Bucket(bCaseOpen)
		var c Case
		if v := open.Get([]byte(n.subject())); len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
			var err error
			if c, err = getCase(tx, v); err != nil {
				return err
			}
		} else {
			var err error
			if id, err = tx.Bucket(bCases).NextSequence(); err != nil {
				return err
			}
			opened = true
			c = Case{ID: strconv.FormatUint(id, 10), Account: n.Account, Stores: []string{}, State: CaseOpen, Opened: n.Opened.At.UTC()}
			if n.Store != "" {
				c.Stores = append(c.Stores, n.Store)
			}
			if err := open.Put([]byte(n.subject()), caseKey(id)); err != nil {
				return err
			}
			if err := putChange(tx, caseKey(id), n.Opened); err != nil {
				return err
			}
		}
		k := caseKey(id)
		c.Updated = n.Opened.At.UTC()
		if n.Alert != nil {
			b, err := event.Marshal(*n.Alert)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bCaseAlerts).Put(append(bytes.Clone(k), n.Alert.ID...), b); err != nil {
				return err
			}
			if err := tx.Bucket(bAlertCase).Put([]byte(n.Alert.ID), k); err != nil {
				return err
			}
			c.Alerts++
			if st := n.Alert.Store; st != "" && st != event.HQStore && !slices.Contains(c.Stores, st) {
				c.Stores = append(c.Stores, st)
			}
		}
		return putCase(tx, k, c)
	})
	if err != nil {
		return "", false, fmt.Errorf("open or extend case: %w", err)
	}
	return strconv.FormatUint(id, 10), opened, nil
}

func (s *Bolt) Case(ctx context.Context, id string) (CaseDetail, error) {
	n, err := parseCaseID(id)
	if err != nil {
		return CaseDetail{}, err
	}
	var d CaseDetail
	err = s.db.View(func(tx *bolt.Tx) error {
		k := caseKey(n)
		c, err := getCase(tx, k)
		if err != nil {
			return err
		}
		d = CaseDetail{Case: c, AlertEvents: []event.Event{}, History: []CaseChange{}}
		cur := tx.Bucket(bCaseAlerts).Cursor()
		for ek, v := cur.Seek(k); ek != nil && bytes.HasPrefix(ek, k); ek, v = cur.Next() {
			ev, err := event.Parse(v)
			if err != nil {
				return fmt.Errorf("alert %s: %w", ek[8:], err)
			}
			d.AlertEvents = append(d.AlertEvents, ev)
		}
		cur = tx.Bucket(bCaseHistory).Cursor()
		for hk, v := cur.Seek(k); hk != nil && bytes.HasPrefix(hk, k); hk, v = cur.Next() {
			var ch CaseChange
			if err := json.Unmarshal(v, &ch); err != nil {
				return err
			}
			d.History = append(d.History, ch)
		}
		return nil
	})
	if err != nil {
		return CaseDetail{}, fmt.Errorf("read case %s: %w", id, err)
	}
	sortAlerts(d.AlertEvents)
	return d, nil
}

// sortAlerts orders a case's alerts as PostgreSQL does: by time, then id.
func sortAlerts(evs []event.Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].At.Equal(evs[j].At) {
			return evs[i].At.Before(evs[j].At)
		}
		return evs[i].ID < evs[j].ID
	})
}

func (s *Bolt) Cases(ctx context.Context, q CaseQuery) ([]Case, error) {
	var from uint64
	if q.After != "" {
		n, err := parseCaseID(q.After)
		if err != nil {
			return nil, fmt.Errorf("list cases: after: %w", err)
		}
		from = n
	}
	out := []Case{}
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bCases).Cursor()
		for k, v := cur.Seek(caseKey(from + 1)); k != nil && len(out) < q.limit(); k, v = cur.Next() {
			var c Case
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("case %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if q.match(&c) {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	return out, nil
}

func (s *Bolt) CaseCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bCases).ForEach(func(k, v []byte) error {
			var c struct {
				State string `json:"state"`
			}
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("case %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out[c.State]++
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("count cases: %w", err)
	}
	return out, nil
}

func (s *Bolt) MoveCase(ctx context.Context, id string, ch CaseChange) (Case, error) {
	n, err := parseCaseID(id)
	if err != nil {
		return Case{}, err
	}
	var c Case
	err = s.db.Update(func(tx *bolt.Tx) error {
		k := caseKey(n)
		var err error
		if c, err = getCase(tx, k); err != nil {
			return err
		}
		if c.State != ch.From {
			return &CaseConflictError{ID: id, Want: ch.From, Current: c.State}
		}
		if ch.From == CaseOpen {
			subject := NewCase{Account: c.Account}.subject()
			if c.Account == "" && len(c.Stores) > 0 {
				subject = NewCase{Store: c.Stores[0]}.subject()
			}
			if err := tx.Bucket(bCaseOpen).Delete([]byte(subject)); err != nil {
				return err
			}
		}
		c.State, c.Updated = ch.To, ch.At.UTC()
		if l := verdict(ch.To); l != "" {
			c.Label = l
		}
		if err := putCase(tx, k, c); err != nil {
			return err
		}
		return putChange(tx, k, ch)
	})
	if err != nil {
		return Case{}, fmt.Errorf("case %s: %w", id, err)
	}
	return c, nil
}

func (s *Bolt) Labels(ctx context.Context) ([]Label, error) {
	latest := map[string]Label{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bCases).ForEach(func(k, v []byte) error {
			var c Case
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("case %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if c.Label == "" || c.Account == "" {
				return nil
			}
			at, err := verdictTime(tx, k)
			if err != nil {
				return err
			}
			if old, ok := latest[c.Account]; !ok || !at.Before(old.At) {
				latest[c.Account] = Label{Account: c.Account, Label: c.Label, Case: c.ID, At: at}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	out := make([]Label, 0, len(latest))
	for _, l := range latest {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out, nil
}

// verdictTime is when the case got its verdict: its move to a state that
// gives a label.
func verdictTime(tx *bolt.Tx, k []byte) (t time.Time, err error) {
	cur := tx.Bucket(bCaseHistory).Cursor()
	for hk, v := cur.Seek(k); hk != nil && bytes.HasPrefix(hk, k); hk, v = cur.Next() {
		var ch CaseChange
		if err := json.Unmarshal(v, &ch); err != nil {
			return t, err
		}
		if verdict(ch.To) != "" {
			t = ch.At
		}
	}
	return t, nil
}

// allowEntry is one allowlist account as the bbolt file keeps it.
type allowEntry struct {
	Detail wire.ListDetail `json:"detail"`
	By     string          `json:"by"`
	Reason string          `json:"reason"`
	Added  time.Time       `json:"added"`
}

func (s *Bolt) AllowlistChange(ctx context.Context, c ListChange) (wire.ListVersion, error) {
	var v wire.ListVersion
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, list := tx.Bucket(bMeta), tx.Bucket(bAllowlist)
		v.Epoch = string(meta.Get(kAllowEpoch))
		v.Seq = 0
		if b := meta.Get(kAllowSeq); len(b) == 8 {
			v.Seq = binary.BigEndian.Uint64(b)
		}
		v.Seq++
		for _, a := range c.Add {
			b, err := json.Marshal(allowEntry{Detail: c.Details[a], By: c.By, Reason: c.Reason, Added: c.At.UTC()})
			if err != nil {
				return err
			}
			if err := list.Put([]byte(a), b); err != nil {
				return err
			}
		}
		for _, a := range c.Remove {
			if err := list.Delete([]byte(a)); err != nil {
				return err
			}
		}
		if _, err := putEvent(tx, c.allowRecord(v)); err != nil {
			return err
		}
		return meta.Put(kAllowSeq, binary.BigEndian.AppendUint64(nil, v.Seq))
	})
	if err != nil {
		return wire.ListVersion{}, fmt.Errorf("change allowlist: %w", err)
	}
	return v, nil
}

func (s *Bolt) Allowlist(ctx context.Context) (wire.ListVersion, []string, map[string]wire.ListDetail, error) {
	var v wire.ListVersion
	var accounts []string
	details := map[string]wire.ListDetail{}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		v.Epoch = string(meta.Get(kAllowEpoch))
		if b := meta.Get(kAllowSeq); len(b) == 8 {
			v.Seq = binary.BigEndian.Uint64(b)
		}
		return tx.Bucket(bAllowlist).ForEach(func(k, b []byte) error {
			var e allowEntry
			if err := json.Unmarshal(b, &e); err != nil {
				return fmt.Errorf("allowlist entry %q: %w", k, err)
			}
			accounts = append(accounts, string(k))
			details[string(k)] = e.Detail
			return nil
		})
	})
	if err != nil {
		return wire.ListVersion{}, nil, nil, fmt.Errorf("read allowlist: %w", err)
	}
	return v, accounts, details, nil
}
