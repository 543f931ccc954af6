package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Feed is the alerts in the order HQ stored them, which the console's live
// stream follows: by storing order, not by the alerts' own time, so an
// alert a register held in its outbox for an hour still shows when it
// arrives, and HQ instances sharing a database each see what the others
// store.
type Feed interface {
	// FeedEnd is the feed's position now: a stream that starts here shows
	// what is stored from now on (after FeedRewind, a little before).
	FeedEnd(ctx context.Context) (string, error)
	// AlertFeed lists at most limit alerts matching q (its Types, order
	// and paging fields are ignored) stored after pos, in storing order,
	// each with its own position.
	AlertFeed(ctx context.Context, q Query, pos string, limit int) ([]FeedAlert, error)
}

// FeedAlert is an alert and its position in the feed.
type FeedAlert struct {
	Alert
	Pos string `json:"-"`
}

// FeedOverlap is how far back FeedRewind goes on PostgreSQL. A row's
// storing time there is its transaction's start, and a transaction that
// started earlier may commit after a later one: a reader that only moved
// forward would miss it. Reading again the last FeedOverlap of the feed
// finds such rows as long as no ingest transaction lasts longer; readers
// drop what they already have by id.
const FeedOverlap = 30 * time.Second

// Positions are "s" + a bbolt sequence number, or "t" + microseconds since
// the epoch + "." + the event id in unpadded base64url (PostgreSQL's
// storing time and id). Both travel as SSE ids, which must not hold
// newlines, hence the encoding of the id.
type feedPos struct {
	seq uint64    // bbolt
	at  time.Time // PostgreSQL
	id  string
	pg  bool
}

// ErrFeedPos is the error of a position that is not one.
var ErrFeedPos = errors.New("feed position")

// maxFeedPos bounds a position read from a client (Last-Event-ID).
const maxFeedPos = 1024

func parseFeedPos(s string) (feedPos, error) {
	bad := func(why string) (feedPos, error) {
		return feedPos{}, fmt.Errorf("%w %.40q: %s", ErrFeedPos, s, why)
	}
	if len(s) > maxFeedPos {
		return bad(fmt.Sprintf("longer than %d bytes", maxFeedPos))
	}
	switch {
	case strings.HasPrefix(s, "s"):
		n, err := strconv.ParseUint(s[1:], 10, 64)
		if err != nil {
			return bad("want s and a sequence number")
		}
		return feedPos{seq: n}, nil
	case strings.HasPrefix(s, "t"):
		us, id, ok := strings.Cut(s[1:], ".")
		if !ok {
			return bad("want t, microseconds, a dot and an id")
		}
		n, err := strconv.ParseInt(us, 10, 64)
		if err != nil || n < 0 {
			return bad("microseconds: want a non-negative integer")
		}
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil {
			return bad("id: want unpadded base64url")
		}
		return feedPos{at: time.UnixMicro(n).UTC(), id: string(b), pg: true}, nil
	}
	return bad("want s… (bbolt) or t… (PostgreSQL)")
}

func (p feedPos) String() string {
	if p.pg {
		return "t" + strconv.FormatInt(p.at.UnixMicro(), 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(p.id))
	}
	return "s" + strconv.FormatUint(p.seq, 10)
}

// CheckFeedPos says what is wrong with a position a client sent.
func CheckFeedPos(pos string) error {
	_, err := parseFeedPos(pos)
	return err
}

// FeedRewind is the position to read the feed again from, to find rows
// that became visible late (see FeedOverlap): on PostgreSQL FeedOverlap
// before pos, on bbolt pos itself, its order being its commit order.
func FeedRewind(pos string) (string, error) {
	p, err := parseFeedPos(pos)
	if err != nil || !p.pg {
		return pos, err
	}
	return feedPos{at: p.at.Add(-FeedOverlap), pg: true}.String(), nil
}
