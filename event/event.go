// Package event is the JSON record a register sends to HQ: every decision,
// alert, review resolution and refusal. HQ stores it, displays show it, and
// `posguard policy test` replays decision events through a policy, so a
// decision event carries the full Request it was made on.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/posguard/posguard/policy/sale"
)

// Type says what an event records.
type Type string

const (
	// Decision is one sale decided at the register; every sale has one.
	Decision Type = "decision"
	// Alert duplicates a review or deny decision for the store displays,
	// which subscribe to alerts only.
	Alert Type = "alert"
	// Resolution is a held sale approved, rejected or timed out.
	Resolution Type = "resolution"
	// Refusal is a policy bundle or denylist message the agent refused to
	// apply (bad signature, old version, sequence gap ...), or a review
	// resolution it refused (wrong manager PIN, rate limit): that one
	// carries a Resolution with the review and the attempted action, and
	// goes to the displays with the alerts.
	Refusal Type = "refusal"
	// DenylistChanged is HQ's record of a change to its denylist: who made
	// it, when and why. HQ writes it with the change, in one transaction;
	// registers never send it (HQ's ingest binds an event to the topic of
	// the register that sent it, and HQStore is no register's store).
	DenylistChanged Type = "denylist"
	// AllowlistChanged is HQ's record of a change to its allowlist, made
	// like DenylistChanged: with the change, in one transaction, with who
	// and why, under id hq/allowlist/{list epoch}/{list seq}.
	AllowlistChanged Type = "allowlist"
)

// HQStore and HQDenylist are the store and register of HQ's own events: a
// denylist change's id is hq/denylist/{list epoch}/{list seq}.
const (
	HQStore    = "hq"
	HQDenylist = "denylist"
	// HQAllowlist is the register of HQ's allowlist changes: id
	// hq/allowlist/{list epoch}/{list seq}.
	HQAllowlist = "allowlist"
	// HQChain is the register of the alerts HQ's chain rules raise: such an
	// alert's id is hq/chain/{rule}.{hash of the event that tripped it}/1,
	// the same on every HQ instance, so a firing is stored (and acted on)
	// once however many times its event is delivered.
	HQChain = "chain"
)

// Why a review resolution was refused, in English for people: the end of a
// refused resolution's Detail ("resolution of review R refused: " + reason).
// Programs read the event's Code instead; these sentences may change.
const (
	RefusedBadPIN      = "wrong manager PIN"
	RefusedRateLimited = "too many wrong PINs; try again later"
	RefusedNoPINs      = "no manager PINs configured (managerPINs)"
	// RefusedPINGuessing ends the alert a register raises when wrong PINs
	// use up its limit for a review or for the register: someone may be
	// guessing the manager PIN.
	RefusedPINGuessing = "PIN guessing: too many wrong manager PINs"
)

// Code says, for programs, why a register refused a review resolution: a
// display shows it in the store's language, HQ can count it. It travels
// beside the human Detail so that nobody has to parse the sentence.
type Code string

// Refusal codes of a refused review resolution.
const (
	CodeWrongPIN        Code = "wrong_pin"        // the PIN matches no manager PIN
	CodeRateLimited     Code = "rate_limited"     // too many wrong PINs recently
	CodeNoPINs          Code = "no_pins"          // the register has no manager PINs configured
	CodeUnknownReview   Code = "unknown_review"   // the register holds no review with that id
	CodeAlreadyResolved Code = "already_resolved" // the review ended otherwise (approved, rejected, timed out)
	CodePINGuessing     Code = "pin_guessing"     // wrong PINs used up a limit: the register's PIN guessing alert
)

// Codes lists every refusal code, in the order of the constants above.
func Codes() []Code {
	return []Code{CodeWrongPIN, CodeRateLimited, CodeNoPINs, CodeUnknownReview, CodeAlreadyResolved, CodePINGuessing}
}

// Check accepts a known code only.
func (c Code) Check() error {
	known := Codes()
	names := make([]string, len(known))
	for i, k := range known {
		if c == k {
			return nil
		}
		names[i] = string(k)
	}
	return fmt.Errorf("code %q: want one of %s", string(c), strings.Join(names, ", "))
}

// Resolution actions.
const (
	Approve = "approve"
	Reject  = "reject"
	Timeout = "timeout"
)

// MaxSize bounds an encoded event. A decision carries the whole cart, so the
// bound is generous, but an MQTT payload or a stored value larger than this
// is not something posguard wrote.
const MaxSize = 256 << 10

// Event is one record in the register's outbox.
//
// ID is "{store}/{register}/{epoch}/{seq}": store and register make it unique
// across the fleet, seq orders it within the register, and epoch (random,
// created with the state file) keeps ids unique when a register's state file
// is replaced and seq starts again at 1 — HQ de-duplicates by ID, so a reused
// id would silently lose an event. A random id alone would lose the
// readability and the order.
type Event struct {
	ID         string          `json:"id"`
	Seq        uint64          `json:"seq"`
	Type       Type            `json:"type"`
	Store      string          `json:"store"`
	Register   string          `json:"register"`
	At         time.Time       `json:"at"`
	SaleID     string          `json:"saleId,omitempty"`
	Request    *sale.Request   `json:"request,omitempty"`
	Decision   *sale.Decision  `json:"decision,omitempty"`
	Resolution *ResolutionInfo `json:"resolution,omitempty"`
	Denylist   *DenylistInfo   `json:"denylist,omitempty"`
	Allowlist  *ListInfo       `json:"allowlist,omitempty"`
	Chain      *ChainInfo      `json:"chain,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	// Code is why a review resolution was refused (refusal events with a
	// Resolution only). Parse accepts its absence, as registers built
	// before the field still hold such events in their outboxes; every
	// register since sets it.
	Code Code `json:"code,omitempty"`
	// Label is ground truth added after the fact ("fraud" or "legit") so a
	// backtest can score a policy; registers never set it.
	Label string `json:"label,omitempty"`
}

// ResolutionInfo is how a held sale ended.
type ResolutionInfo struct {
	ReviewID string    `json:"reviewId"`
	Action   string    `json:"action"` // approve | reject | timeout
	By       string    `json:"by,omitempty"`
	At       time.Time `json:"at"`
}

// DenylistInfo is one change to HQ's denylist.
type DenylistInfo = ListInfo

// ListInfo is one change to one of HQ's lists (the denylist or the
// allowlist): both record their changes in this one shape.
type ListInfo struct {
	Epoch  string   `json:"epoch"`
	Seq    uint64   `json:"seq"`
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
	By     string   `json:"by"`     // the authenticated caller: "ops-bot (token)"
	Reason string   `json:"reason"` // why, as the caller gave it
}

// ChainInfo is what a chain rule at HQ saw: the alert it raised carries it
// instead of a request and decision.
type ChainInfo struct {
	Rule    string   `json:"rule"`
	Kind    string   `json:"kind"`
	Mode    string   `json:"mode"` // enforce | shadow
	Reason  string   `json:"reason"`
	Account string   `json:"account,omitempty"`
	Stores  []string `json:"stores,omitempty"`  // the stores concerned; the alert goes to their displays
	Events  []string `json:"events,omitempty"`  // the events that tripped it, the last one first
	Actions []string `json:"actions,omitempty"` // taken: alert, denylist, case
}

// ID builds an event id; see Event.
func ID(store, register, epoch string, seq uint64) string {
	return store + "/" + register + "/" + epoch + "/" + strconv.FormatUint(seq, 10)
}

// SplitID is the inverse of ID.
func SplitID(id string) (store, register, epoch string, seq uint64, err error) {
	parts := strings.Split(id, "/")
	if len(parts) != 4 {
		return "", "", "", 0, fmt.Errorf("event id %q: want store/register/epoch/seq", id)
	}
	for i, name := range []string{"store", "register", "epoch"} {
		if parts[i] == "" {
			return "", "", "", 0, fmt.Errorf("event id %q: empty %s", id, name)
		}
	}
	seq, err = strconv.ParseUint(parts[3], 10, 64)
	if err != nil || seq == 0 {
		return "", "", "", 0, fmt.Errorf("event id %q: seq must be a positive integer", id)
	}
	return parts[0], parts[1], parts[2], seq, nil
}

// Marshal encodes ev as the JSON sent to HQ.
func Marshal(ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return b, nil
}

// Parse decodes one event strictly: unknown fields, trailing data, oversize
// input and missing required fields are errors, because events arrive from
// the network and end up replayed through policies.
func Parse(b []byte) (Event, error) {
	if len(b) > MaxSize {
		return Event{}, fmt.Errorf("parse event: %d bytes exceeds the limit of %d", len(b), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ev Event
	if err := dec.Decode(&ev); err != nil {
		return Event{}, fmt.Errorf("parse event: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Event{}, errors.New("parse event: trailing data after the event object")
	}
	if err := ev.Validate(); err != nil {
		return Event{}, fmt.Errorf("parse event %q: %w", ev.ID, err)
	}
	return ev, nil
}

// Validate checks the fields every consumer relies on.
func (ev Event) Validate() error {
	store, register, _, seq, err := SplitID(ev.ID)
	switch {
	case err != nil:
		return err
	case ev.Store == "":
		return errors.New("store is required")
	case ev.Register == "":
		return errors.New("register is required")
	case store != ev.Store || register != ev.Register:
		return fmt.Errorf("id names %s/%s but the event is from %s/%s", store, register, ev.Store, ev.Register)
	case seq != ev.Seq:
		return fmt.Errorf("id has seq %d but seq is %d", seq, ev.Seq)
	case ev.At.IsZero():
		return errors.New("at is required")
	case ev.Label != "" && ev.Label != "fraud" && ev.Label != "legit":
		return fmt.Errorf("label %q: want fraud or legit", ev.Label)
	}
	if ev.Chain != nil || ev.Register == HQChain && ev.Store == HQStore {
		return ev.validateChain()
	}
	switch ev.Type {
	case Decision, Alert:
		if ev.Request == nil {
			return fmt.Errorf("%s event without request", ev.Type)
		}
		if ev.Decision == nil {
			return fmt.Errorf("%s event without decision", ev.Type)
		}
		if ev.SaleID == "" || ev.SaleID != ev.Request.SaleID {
			return fmt.Errorf("saleId %q does not match the request's %q", ev.SaleID, ev.Request.SaleID)
		}
		switch ev.Decision.Outcome {
		case sale.Allow, sale.Review, sale.Deny:
		default:
			return fmt.Errorf("decision outcome %q: want allow, review or deny", ev.Decision.Outcome)
		}
		if ev.Type == Alert && ev.Decision.Outcome == sale.Allow {
			return errors.New("alert for an allowed sale")
		}
	case Resolution:
		r := ev.Resolution
		if r == nil {
			return errors.New("resolution event without resolution")
		}
		if r.ReviewID == "" {
			return errors.New("resolution.reviewId is required")
		}
		if r.Action != Approve && r.Action != Reject && r.Action != Timeout {
			return fmt.Errorf("resolution.action %q: want approve, reject or timeout", r.Action)
		}
		if r.At.IsZero() {
			return errors.New("resolution.at is required")
		}
	case Refusal:
		if ev.Detail == "" {
			return errors.New("refusal event without detail")
		}
		r := ev.Resolution
		if r == nil {
			if ev.Code != "" {
				return fmt.Errorf("code %q on a refusal without resolution: codes are for refused review resolutions", ev.Code)
			}
			break
		}
		if r.ReviewID == "" {
			return errors.New("refused resolution without resolution.reviewId")
		}
		if r.Action != Approve && r.Action != Reject {
			return fmt.Errorf("refused resolution.action %q: want approve or reject", r.Action)
		}
		if ev.Code != "" {
			if err := ev.Code.Check(); err != nil {
				return fmt.Errorf("refused resolution: %w", err)
			}
		}
	case DenylistChanged:
		if err := ev.validateList(HQDenylist, ev.Denylist, ev.Allowlist); err != nil {
			return err
		}
	case AllowlistChanged:
		if err := ev.validateList(HQAllowlist, ev.Allowlist, ev.Denylist); err != nil {
			return err
		}
	case "":
		return errors.New("type is required")
	default:
		return fmt.Errorf("type %q: want decision, alert, resolution, refusal, denylist or allowlist", ev.Type)
	}
	if ev.Code != "" && ev.Type != Refusal {
		return fmt.Errorf("code %q on a %s event: codes are for refused review resolutions", ev.Code, ev.Type)
	}
	return nil
}

// validateList checks HQ's record of a change to the list kept by the
// register list (HQDenylist or HQAllowlist): its info d, and no info of the
// other list.
func (ev Event) validateList(list string, d, other *ListInfo) error {
	switch {
	case d == nil:
		return fmt.Errorf("%s event without %s", list, list)
	case other != nil:
		return fmt.Errorf("%s event with a change to the other list", list)
	case ev.Store != HQStore || ev.Register != list:
		return fmt.Errorf("%s event from %s/%s: only HQ (%s/%s) records them", list, ev.Store, ev.Register, HQStore, list)
	case d.Seq != ev.Seq:
		return fmt.Errorf("%s.seq %d but seq is %d", list, d.Seq, ev.Seq)
	case len(d.Add)+len(d.Remove) == 0:
		return fmt.Errorf("%s event with nothing added or removed", list)
	case d.By == "":
		return fmt.Errorf("%s.by is required", list)
	case d.Reason == "":
		return fmt.Errorf("%s.reason is required", list)
	}
	return nil
}

// validateChain checks an alert raised by a chain rule at HQ.
func (ev Event) validateChain() error {
	c := ev.Chain
	switch {
	case ev.Store != HQStore || ev.Register != HQChain:
		return fmt.Errorf("chain alert from %s/%s: only HQ (%s/%s) raises them", ev.Store, ev.Register, HQStore, HQChain)
	case ev.Type != Alert:
		return fmt.Errorf("%s event from %s/%s: want alert", ev.Type, HQStore, HQChain)
	case c == nil:
		return errors.New("chain alert without chain")
	case c.Rule == "":
		return errors.New("chain.rule is required")
	case c.Reason == "":
		return errors.New("chain.reason is required")
	case c.Mode != "enforce" && c.Mode != "shadow":
		return fmt.Errorf("chain.mode %q: want enforce or shadow", c.Mode)
	case ev.Request != nil || ev.Decision != nil || ev.Resolution != nil || ev.Denylist != nil || ev.Allowlist != nil || ev.Code != "":
		return errors.New("chain alert with register fields (request, decision, resolution, denylist, allowlist or code)")
	}
	return nil
}
