package store

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// ListsStore is what the console's Lists and Cases pages read: the lists'
// entries with who put each there, when and why, the lists' audit trail,
// and a case's alerts a page at a time. Every read is a page found by an
// index, never a scan of the events.
type ListsStore interface {
	// DenylistEntries lists the denylist's accounts matching q, by
	// account, each with the change that (last) added it.
	DenylistEntries(ctx context.Context, q ListQuery) ([]ListEntry, error)
	// AllowlistEntries is DenylistEntries for the allowlist.
	AllowlistEntries(ctx context.Context, q ListQuery) ([]ListEntry, error)
	// ListChanges lists the records of list changes (events of
	// ListChangeTypes) matching q, newest first.
	ListChanges(ctx context.Context, q AuditQuery) ([]event.Event, error)
	// CaseAlerts lists a case's alerts after q.After in (at, id) order.
	CaseAlerts(ctx context.Context, id string, q CaseAlertQuery) ([]event.Event, error)
	// ListVersion is the version of the list whose changes are recorded
	// as events of type t, without reading the list.
	ListVersion(ctx context.Context, t event.Type) (wire.ListVersion, error)
	// EventsByID returns the stored events among ids, in no order; ids
	// not stored are left out.
	EventsByID(ctx context.Context, ids []string) ([]event.Event, error)
}

// ListChangeTypes are the types of the events that record list changes:
// the denylist's, and the allowlist's once HQ records those.
var ListChangeTypes = []event.Type{event.DenylistChanged, AllowlistChanged}

// AllowlistChanged is event.AllowlistChanged, the type of the event
// recording an allowlist change.
const AllowlistChanged = event.AllowlistChanged

// ListEntry is one account on a list: the change that (last) added it
// and the entry's detail (expiry, rule, events).
type ListEntry struct {
	Account string
	Added   time.Time
	By      string // who added it: the authenticated caller, or "hq" for a rule
	Reason  string // why, as they said
	Seq     uint64 // the list version that added it; 0 when no record names it
	Detail  wire.ListDetail
}

// ListQuery selects list entries by account. Zero fields do not filter.
type ListQuery struct {
	Prefix string // accounts starting with this
	After  string // continue after this account
	Limit  int    // 0: DefaultListLimit
}

// DefaultListLimit and MaxListLimit bound a page of list entries or
// changes.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

func (q ListQuery) limit() int { return pageLimit(q.Limit) }

func pageLimit(n int) int {
	if n <= 0 {
		return DefaultListLimit
	}
	return min(n, MaxListLimit)
}

// AuditQuery selects list changes, newest first.
type AuditQuery struct {
	Type    event.Type // one of ListChangeTypes; "" for both
	Account string     // changes adding or removing this account
	Before  Cursor     // continue before this change (zero: from the newest)
	Limit   int        // 0: DefaultListLimit
}

// CaseAlertQuery pages through a case's alerts, oldest first.
type CaseAlertQuery struct {
	After Cursor // continue after this alert (zero: from the first)
	Limit int    // 0: DefaultListLimit
}

// Cursor is a place in an (at, id) ordering: the last item of a page.
type Cursor struct {
	At time.Time
	ID string
}

// IsZero reports whether c is the start of the ordering.
func (c Cursor) IsZero() bool { return c.ID == "" }

// CursorOf is the cursor just past ev.
func CursorOf(ev event.Event) Cursor { return Cursor{At: ev.At, ID: ev.ID} }

// String encodes c for a URL: opaque to callers, who hand it back.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(c.At.UTC().Format(time.RFC3339Nano) + " " + c.ID))
}

// ParseCursor decodes a cursor String made, "" as the zero cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, errors.New("cursor: not one this API handed out (bad encoding)")
	}
	at, id, ok := strings.Cut(string(b), " ")
	if !ok || id == "" {
		return Cursor{}, errors.New("cursor: not one this API handed out (no id)")
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Cursor{}, fmt.Errorf("cursor: not one this API handed out (time: %w)", err)
	}
	if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
		return Cursor{}, errors.New("cursor: not one this API handed out (time outside years 0 to 9999)")
	}
	return Cursor{At: t, ID: id}, nil
}

// place orders ev against c in (at, id) order: < 0 before, > 0 after.
func (c Cursor) place(ev event.Event) int {
	return cmp.Or(ev.At.Compare(c.At), strings.Compare(ev.ID, c.ID))
}

// ChangeInfo reads the list change an event of ListChangeTypes records,
// whichever list it is about: every list records its changes in the
// denylist record's shape, under the member named as its type. nil when
// ev records none.
func ChangeInfo(ev event.Event) *event.DenylistInfo {
	if ev.Type == event.DenylistChanged {
		return ev.Denylist
	}
	b, err := event.Marshal(ev)
	if err != nil {
		return nil
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(b, &members) != nil {
		return nil
	}
	raw, ok := members[string(ev.Type)]
	var d event.DenylistInfo
	if !ok || json.Unmarshal(raw, &d) != nil {
		return nil
	}
	return &d
}

// names reports whether the change ev records adds or removes account.
func names(ev event.Event, account string) bool {
	d := ChangeInfo(ev)
	if d == nil {
		return false
	}
	for _, a := range d.Add {
		if a == account {
			return true
		}
	}
	for _, a := range d.Remove {
		if a == account {
			return true
		}
	}
	return false
}
