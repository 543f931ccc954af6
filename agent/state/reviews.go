package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
)

// Review is a sale held for a clerk or manager. Token is the payment token
// exactly as scanned, kept so an approval can forward it to the POS even
// after a restart.
type Review struct {
	ID         string                `json:"id"`
	SaleID     string                `json:"saleId"`
	Token      []byte                `json:"token"`
	Created    time.Time             `json:"created"`
	Deadline   time.Time             `json:"deadline"`
	Resolution *event.ResolutionInfo `json:"resolution,omitempty"`
}

func (r *Review) validate() error {
	switch {
	case r.ID == "":
		return errors.New("review: id is required")
	case r.SaleID == "":
		return fmt.Errorf("review %s: sale id is required", r.ID)
	case len(r.Token) == 0:
		return fmt.Errorf("review %s: held token is required", r.ID)
	case r.Deadline.IsZero():
		return fmt.Errorf("review %s: deadline is required", r.ID)
	}
	return nil
}

// PutReview stores an open review. Storing an id that exists already is a
// no-op (the stored one, possibly resolved, is kept).
func (s *Store) PutReview(ctx context.Context, r Review) error {
	if err := r.validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put review %s: %w", r.ID, err)
	}
	r.Resolution = nil
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put review %s: %w", r.ID, err)
	}
	err = s.write(func(tx *bolt.Tx) error {
		rb := tx.Bucket([]byte(bReviews))
		if rb.Get([]byte(r.ID)) != nil {
			return nil
		}
		return rb.Put([]byte(r.ID), b)
	})
	if err != nil {
		return fmt.Errorf("put review %s in %s: %w", r.ID, s.path, err)
	}
	return nil
}

// Review returns the review with id; ok is false when there is none.
func (s *Store) Review(id string) (r Review, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bReviews)).Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		return decodeReview(v, &r)
	})
	if err != nil {
		return Review{}, false, fmt.Errorf("read review %s: %w", id, err)
	}
	return r, ok, nil
}

// ResolveReview records how a review ended and appends the resolution event
// in the same transaction. It returns changed=false when the review was
// already resolved with the same action — the caller must then not act
// again (not forward the token twice) — and ErrAlreadyResolved when it was
// resolved with another action.
func (s *Store) ResolveReview(ctx context.Context, id string, res event.ResolutionInfo) (r Review, changed bool, err error) {
	res.ReviewID = id
	switch {
	case res.Action != event.Approve && res.Action != event.Reject && res.Action != event.Timeout:
		return Review{}, false, fmt.Errorf("resolve review %s: action %q: want approve, reject or timeout", id, res.Action)
	case res.At.IsZero():
		return Review{}, false, fmt.Errorf("resolve review %s: time is required", id)
	}
	if err := ctx.Err(); err != nil {
		return Review{}, false, fmt.Errorf("resolve review %s: %w", id, err)
	}
	err = s.write(func(tx *bolt.Tx) error {
		changed = false
		rb := tx.Bucket([]byte(bReviews))
		v := rb.Get([]byte(id))
		if v == nil {
			return ErrNoReview
		}
		r = Review{}
		if err := decodeReview(v, &r); err != nil {
			return err
		}
		if r.Resolution != nil {
			if r.Resolution.Action == res.Action {
				return nil
			}
			return fmt.Errorf("%w: it was resolved (%s) by %q at %s", ErrAlreadyResolved, r.Resolution.Action, r.Resolution.By, r.Resolution.At.Format(time.RFC3339))
		}
		r.Resolution = &res
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := rb.Put([]byte(id), b); err != nil {
			return err
		}
		ev := event.Event{Type: event.Resolution, At: res.At, SaleID: r.SaleID, Resolution: &res}
		if err := s.appendEvent(tx, &ev); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return Review{}, false, fmt.Errorf("resolve review %s: %w", id, err)
	}
	return r, changed, nil
}

// OpenReviews returns the unresolved reviews, earliest deadline first.
func (s *Store) OpenReviews() ([]Review, error) {
	var out []Review
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bReviews)).ForEach(func(k, v []byte) error {
			var r Review
			if err := decodeReview(v, &r); err != nil {
				return fmt.Errorf("review %q: %w", k, err)
			}
			if r.Resolution == nil {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list reviews in %s: %w", s.path, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Deadline.Before(out[j].Deadline) })
	return out, nil
}

func decodeReview(v []byte, r *Review) error {
	if err := json.Unmarshal(v, r); err != nil {
		return fmt.Errorf("%w: review: %w", ErrCorrupt, err)
	}
	return nil
}
