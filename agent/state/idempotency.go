package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxIdempotencyKey bounds a caller's Idempotency-Key, which becomes a
// bbolt key.
const MaxIdempotencyKey = 255

// ErrIdempotent: the decision's idempotency key was stored by an earlier
// commit (a retry racing its original); read that answer with Answer.
var ErrIdempotent = errors.New("idempotency key already used")

// Idempotent is a caller's retry key for one decision. It is stored in the
// decision's own transaction, so a retry after a lost answer gets the
// answer that was made durable instead of "token replayed".
type Idempotent struct {
	Key string
	// Fingerprint identifies the request the key was first used for; a
	// retry with the same key and another request is refused.
	Fingerprint string
	// Response is the answer as the caller sees it, without the event id
	// the commit assigns (Answer returns that beside it).
	Response []byte
	// Expires is when the key may be pruned.
	Expires time.Time
}

func (i *Idempotent) validate() error {
	switch {
	case i.Key == "" || len(i.Key) > MaxIdempotencyKey:
		return fmt.Errorf("idempotency key: must be 1 to %d bytes, got %d", MaxIdempotencyKey, len(i.Key))
	case i.Fingerprint == "":
		return errors.New("idempotency key: fingerprint is required")
	case !json.Valid(i.Response):
		return errors.New("idempotency key: response is not JSON")
	case i.Expires.IsZero():
		return errors.New("idempotency key: expiry is required")
	}
	return nil
}

// storedAnswer is the value under an idempotency key.
type storedAnswer struct {
	Fingerprint string          `json:"fp"`
	Response    json.RawMessage `json:"response"`
	EventID     string          `json:"eventId"`
	Expires     time.Time       `json:"expires"`
}

// Answer is what an earlier decision with an idempotency key answered.
type Answer struct {
	Fingerprint string
	Response    []byte
	EventID     string
}

// Answer returns the stored answer for an idempotency key, if it has one
// that has not expired by now.
func (s *Store) Answer(key string, now time.Time) (Answer, bool, error) {
	var (
		a     Answer
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bIdem)).Get([]byte(key))
		if v == nil {
			return nil
		}
		var st storedAnswer
		if err := json.Unmarshal(v, &st); err != nil {
			return fmt.Errorf("%w: idempotency key %q: %v", ErrCorrupt, key, err)
		}
		if !st.Expires.After(now) {
			return nil
		}
		// json.RawMessage copies what it decodes, so Response does not
		// point into bbolt's memory, which is only valid inside the View.
		a = Answer{Fingerprint: st.Fingerprint, Response: st.Response, EventID: st.EventID}
		found = true
		return nil
	})
	if err != nil {
		return Answer{}, false, fmt.Errorf("read idempotency key from %s: %w", s.path, err)
	}
	return a, found, nil
}

// putAnswer stores an idempotency key with the event id its commit got.
func putAnswer(tx *bolt.Tx, i *Idempotent, eventID string) error {
	v, err := json.Marshal(storedAnswer{Fingerprint: i.Fingerprint, Response: i.Response, EventID: eventID, Expires: i.Expires})
	if err != nil {
		return fmt.Errorf("encode idempotency key: %w", err)
	}
	if err := tx.Bucket([]byte(bIdem)).Put([]byte(i.Key), v); err != nil {
		return fmt.Errorf("store idempotency key: %w", err)
	}
	return nil
}

// answerExpired reports whether a stored answer may be pruned; an
// unreadable one goes too, as nothing could use it.
func answerExpired(v []byte, now time.Time) bool {
	var st storedAnswer
	return json.Unmarshal(v, &st) != nil || !st.Expires.After(now)
}
