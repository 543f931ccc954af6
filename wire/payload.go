package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/posguard/posguard/internal/ascii"
)

// Size and count bounds. A message over its bound is refused before it is
// decoded, so a hostile or broken peer cannot make a register allocate
// without limit.
const (
	MaxStatusBytes  = 16 << 10
	MaxCommandBytes = 4 << 10
	MaxAckBytes     = 160 << 10
	MaxAckIDs       = 1000
	MaxEventIDLen   = 128
	MaxAccountLen   = 128
	MaxTextLen      = 256 // free text: versions, names, details, "by"
	MaxDeltaBytes   = 4 << 20
	MaxDeltaEntries = 50_000
	// MaxSnapshotBytes fits 1,000,000 account keys of 64 hex characters
	// (67 bytes each with quotes and comma, about 64 MiB) with room to
	// spare. One message keeps the retained snapshot atomic; the broker's
	// max_packet_size in scripts/mosquitto is set above it.
	MaxSnapshotBytes    = 96 << 20
	MaxSnapshotAccounts = 2_000_000
)

// decodeStrict parses exactly one JSON value of at most max bytes into v,
// refusing unknown fields and trailing data.
func decodeStrict(data []byte, max int, what string, v any) error {
	if len(data) > max {
		return fmt.Errorf("%s: %d bytes, limit %d", what, len(data), max)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%s: empty message", what)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: trailing data after the JSON object", what)
	}
	return nil
}

func checkText(field, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s: required", field)
		}
		return nil
	}
	if len(s) > MaxTextLen {
		return fmt.Errorf("%s: longer than %d bytes", field, MaxTextLen)
	}
	return checkPrintable(field, s)
}

func checkPrintable(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: control character %U at %d", field, r, i)
		}
	}
	return nil
}

// CheckAccount checks a denylist account key: 1..MaxAccountLen bytes of
// printable UTF-8. Account keys are PG1 subjects or hashes, never parsed.
func CheckAccount(a string) error {
	if a == "" {
		return errors.New("empty account key")
	}
	if len(a) > MaxAccountLen {
		return fmt.Errorf("account key longer than %d bytes", MaxAccountLen)
	}
	return checkPrintable("account key", a)
}

// CheckEventID checks an event id: 1..MaxEventIDLen bytes of visible ASCII.
func CheckEventID(id string) error {
	if id == "" {
		return errors.New("empty event id")
	}
	if len(id) > MaxEventIDLen {
		return fmt.Errorf("event id longer than %d bytes", MaxEventIDLen)
	}
	return ascii.Visible("event id", id)
}

// ---- Status ----

// LinkState is the state of the scanner or POS link.
type LinkState string

const (
	LinkUp   LinkState = "up"
	LinkDown LinkState = "down"
	LinkNone LinkState = "none" // not configured
)

func (l LinkState) check(field string) error {
	switch l {
	case LinkUp, LinkDown, LinkNone:
		return nil
	case "":
		return fmt.Errorf("%s: required", field)
	}
	return fmt.Errorf("%s: %q is not up, down or none", field, string(l))
}

// Links are the register's device links.
type Links struct {
	Scanner LinkState `json:"scanner"`
	POS     LinkState `json:"pos"`
}

// PolicyInfo names the active policy.
type PolicyInfo struct {
	Name      string    `json:"name"`
	Version   int64     `json:"version"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// IssuedAt is the policy's metadata.issuedAt, so a fleet view can say
	// when the version in force was made. Optional: older registers omit it.
	IssuedAt time.Time `json:"issuedAt,omitzero"`
}

// Refusal subjects.
const (
	SubjectPolicy    = "policy"
	SubjectDenylist  = "denylist"
	SubjectAllowlist = "allowlist"
)

// Refusal reports the last policy or denylist message the register refused,
// so HQ's fleet view shows why a push did not take.
type Refusal struct {
	Subject string    `json:"subject"` // policy | denylist | allowlist
	Reason  string    `json:"reason"`  // a bundle reason code: bad_signature, not_newer, ...
	Detail  string    `json:"detail,omitempty"`
	Version int64     `json:"version,omitempty"` // refused policy version or denylist seq, when known
	At      time.Time `json:"at"`
}

// DecisionSummary is the last decision, short enough for a status line.
type DecisionSummary struct {
	SaleID  string    `json:"saleId"`
	Outcome string    `json:"outcome"`         // allow | review | deny, as policy.Outcome
	Rules   []string  `json:"rules,omitempty"` // ids of the fired rules
	At      time.Time `json:"at"`
}

// Status is the register's retained status and, with Online false, its
// last will.
type Status struct {
	Store        string           `json:"store"`
	Register     string           `json:"register"`
	Online       bool             `json:"online"`
	Version      string           `json:"version"` // posguard build version
	UptimeSec    int64            `json:"uptimeSec"`
	Policy       *PolicyInfo      `json:"policy,omitempty"`
	Refusal      *Refusal         `json:"refusal,omitempty"`
	OutboxDepth  int              `json:"outboxDepth"`
	Dropped      int64            `json:"dropped"` // events dropped because the outbox was full, ever
	Links        Links            `json:"links"`
	LastDecision *DecisionSummary `json:"lastDecision,omitempty"`
	DenylistSeq  uint64           `json:"denylistSeq"`
	// DenylistEpoch is the epoch of the register's list ("" before any).
	DenylistEpoch string `json:"denylistEpoch,omitempty"`
	// DenylistReset is the last time the register replaced its list by a
	// snapshot of another epoch or an older sequence: HQ's list changed
	// identity (new store, restored backup) and the register healed.
	DenylistReset *DenylistReset `json:"denylistReset,omitempty"`
	// AllowlistSeq and AllowlistEpoch are the version of the register's
	// allowlist (omitted before any, and by registers before it).
	AllowlistSeq   uint64 `json:"allowlistSeq,omitempty"`
	AllowlistEpoch string `json:"allowlistEpoch,omitempty"`
	// Peers is the store facts link; absent from registers that predate
	// it and from the last will.
	Peers *Peers    `json:"peers,omitempty"`
	At    time.Time `json:"at"`
}

// Peers says whether a register shares facts with the other registers of
// its store, and how far behind it may be.
type Peers struct {
	// Reachable: connected to the broker with the store facts
	// subscription granted. When false the register decides on what it
	// has: a token spent at another till meanwhile is not known here.
	Reachable bool `json:"reachable"`
	// LastFactAt is the time of the newest peer fact applied (omitted:
	// none yet). After a restart, facts queued by the broker arrive
	// first; a LastFactAt far behind the peers' last sales is the lag.
	LastFactAt time.Time `json:"lastFactAt,omitzero"`
	// Pending is this register's own facts the broker has not yet
	// taken: the peers do not know them yet.
	Pending int `json:"pending"`
}

// Why a register's denylist was reset.
const (
	ResetEpoch     = "epoch"     // the snapshot belongs to another HQ store
	ResetBackwards = "backwards" // same store, an older sequence issued later: a restored backup
)

// DenylistReset reports a denylist replaced across epochs or backwards.
type DenylistReset struct {
	From ListVersion `json:"from"`
	To   ListVersion `json:"to"`
	Why  string      `json:"why"` // epoch | backwards
	At   time.Time   `json:"at"`
}

// Offline is the last-will payload registered at connect: the broker
// publishes it (retained, on StatusTopic) when the register vanishes. At is
// the time of the connect, the last moment the register is known to be up.
func Offline(store, reg, version string, at time.Time) Status {
	return Status{
		Store: store, Register: reg, Online: false, Version: version,
		Links: Links{Scanner: LinkNone, POS: LinkNone}, At: at,
	}
}

// Validate checks every field; Marshal and ParseStatus call it.
func (s *Status) Validate() error {
	if err := ValidateStore(s.Store); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if err := ValidateRegister(s.Register); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if err := checkText("status: version", s.Version, true); err != nil {
		return err
	}
	if s.UptimeSec < 0 {
		return fmt.Errorf("status: uptimeSec %d < 0", s.UptimeSec)
	}
	if s.OutboxDepth < 0 {
		return fmt.Errorf("status: outboxDepth %d < 0", s.OutboxDepth)
	}
	if s.Dropped < 0 {
		return fmt.Errorf("status: dropped %d < 0", s.Dropped)
	}
	if p := s.Policy; p != nil {
		if err := checkText("status: policy.name", p.Name, true); err != nil {
			return err
		}
		if p.Version <= 0 {
			return fmt.Errorf("status: policy.version %d must be > 0", p.Version)
		}
	}
	if s.DenylistEpoch != "" {
		if err := CheckEpoch(s.DenylistEpoch); err != nil {
			return fmt.Errorf("status: denylistEpoch: %w", err)
		}
	}
	if s.AllowlistEpoch != "" {
		if err := CheckEpoch(s.AllowlistEpoch); err != nil {
			return fmt.Errorf("status: allowlistEpoch: %w", err)
		}
	}
	if r := s.DenylistReset; r != nil {
		if r.Why != ResetEpoch && r.Why != ResetBackwards {
			return fmt.Errorf("status: denylistReset.why %q is not epoch or backwards", r.Why)
		}
		if err := CheckEpoch(r.To.Epoch); err != nil {
			return fmt.Errorf("status: denylistReset.to: %w", err)
		}
		if r.From.Epoch != "" {
			if err := CheckEpoch(r.From.Epoch); err != nil {
				return fmt.Errorf("status: denylistReset.from: %w", err)
			}
		}
		if r.At.IsZero() {
			return errors.New("status: denylistReset.at: required")
		}
	}
	if r := s.Refusal; r != nil {
		if r.Subject != SubjectPolicy && r.Subject != SubjectDenylist && r.Subject != SubjectAllowlist {
			return fmt.Errorf("status: refusal.subject %q is not policy, denylist or allowlist", r.Subject)
		}
		if err := checkText("status: refusal.reason", r.Reason, true); err != nil {
			return err
		}
		if err := checkText("status: refusal.detail", r.Detail, false); err != nil {
			return err
		}
		if r.At.IsZero() {
			return errors.New("status: refusal.at: required")
		}
	}
	if err := s.Links.Scanner.check("status: links.scanner"); err != nil {
		return err
	}
	if err := s.Links.POS.check("status: links.pos"); err != nil {
		return err
	}
	if d := s.LastDecision; d != nil {
		if err := checkText("status: lastDecision.saleId", d.SaleID, true); err != nil {
			return err
		}
		switch d.Outcome {
		case "allow", "review", "deny":
		default:
			return fmt.Errorf("status: lastDecision.outcome %q is not allow, review or deny", d.Outcome)
		}
		if len(d.Rules) > 64 {
			return fmt.Errorf("status: lastDecision.rules: %d ids, limit 64", len(d.Rules))
		}
		for i, id := range d.Rules {
			if err := checkText(fmt.Sprintf("status: lastDecision.rules[%d]", i), id, true); err != nil {
				return err
			}
		}
		if d.At.IsZero() {
			return errors.New("status: lastDecision.at: required")
		}
	}
	if p := s.Peers; p != nil && p.Pending < 0 {
		return fmt.Errorf("status: peers.pending %d < 0", p.Pending)
	}
	if s.At.IsZero() {
		return errors.New("status: at: required")
	}
	return nil
}

// Marshal validates and encodes the status.
func (s Status) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// ParseStatus decodes and validates a status or last-will message.
func ParseStatus(data []byte) (Status, error) {
	// Online is a required bool: decode it through a pointer so a missing
	// field is told apart from false.
	var aux struct {
		Status
		Online *bool `json:"online"`
	}
	if err := decodeStrict(data, MaxStatusBytes, "status", &aux); err != nil {
		return Status{}, err
	}
	if aux.Online == nil {
		return Status{}, errors.New("status: online: required")
	}
	s := aux.Status
	s.Online = *aux.Online
	if err := s.Validate(); err != nil {
		return Status{}, err
	}
	return s, nil
}

// ---- Command ----

// CommandType says what a command asks.
type CommandType string

const (
	// CmdResolve is a display's resolution of a held review; display →
	// register.
	CmdResolve CommandType = "resolve"
	// CmdResync is a register's request for the denylist snapshot after a
	// gap in the delta sequence; register → HQ. A register ignores resync
	// commands it hears on its own cmd topic.
	CmdResync CommandType = "resync"
)

// Action is the outcome of a resolved review.
type Action string

const (
	Approve Action = "approve"
	Reject  Action = "reject"
)

// PIN is the clerk's or manager's PIN confirming a resolution. It must cross
// the wire, but must never reach a log: String, GoString and LogValue mask it.
type PIN string

const pinMask = "****"

func (p PIN) String() string             { return pinMask }
func (p PIN) GoString() string           { return pinMask }
func (p PIN) LogValue() slog.Value       { return slog.StringValue(pinMask) }
func (p PIN) Format(f fmt.State, _ rune) { io.WriteString(f, pinMask) }

// Reveal returns the PIN for the one place that checks it.
func (p PIN) Reveal() string { return string(p) }

// Command is a message on a register's cmd topic.
type Command struct {
	// ID makes the command idempotent: a register applies an id once.
	ID       string      `json:"id"`
	Type     CommandType `json:"type"`
	Store    string      `json:"store"`
	Register string      `json:"register"`
	ReviewID string      `json:"reviewId,omitempty"` // resolve
	Action   Action      `json:"action,omitempty"`   // resolve
	PIN      PIN         `json:"pin,omitempty"`      // resolve
	By       string      `json:"by,omitempty"`       // resolve: who resolved
	HaveSeq  uint64      `json:"haveSeq,omitempty"`  // resync: last seq applied of List
	// List is the list a resync asks for: SubjectDenylist (or "", what
	// registers before the allowlist send) or SubjectAllowlist.
	List string    `json:"list,omitempty"`
	At   time.Time `json:"at"`
}

// LogValue leaves the PIN out of structured logs.
func (c Command) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", c.ID), slog.String("type", string(c.Type)),
		slog.String("store", c.Store), slog.String("register", c.Register),
		slog.String("review", c.ReviewID), slog.String("action", string(c.Action)),
		slog.String("by", c.By), slog.Uint64("haveSeq", c.HaveSeq), slog.String("list", c.List), slog.Time("at", c.At))
}

// Validate checks the fields each command type needs and refuses the ones
// it must not carry.
func (c *Command) Validate() error {
	if err := CheckEventID(c.ID); err != nil {
		return fmt.Errorf("command: id: %w", err)
	}
	if err := ValidateStore(c.Store); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if err := ValidateRegister(c.Register); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if c.At.IsZero() {
		return errors.New("command: at: required")
	}
	switch c.Type {
	case CmdResolve:
		if err := CheckEventID(c.ReviewID); err != nil {
			return fmt.Errorf("command: reviewId: %w", err)
		}
		if c.Action != Approve && c.Action != Reject {
			return fmt.Errorf("command: action %q is not approve or reject", string(c.Action))
		}
		if n := len(c.PIN); n < 4 || n > 12 {
			return fmt.Errorf("command: pin: want 4 to 12 digits, got %d characters", n)
		}
		for i := 0; i < len(c.PIN); i++ {
			if c.PIN[i] < '0' || c.PIN[i] > '9' {
				return fmt.Errorf("command: pin: non-digit at %d", i)
			}
		}
		if err := checkText("command: by", c.By, true); err != nil {
			return err
		}
		if c.HaveSeq != 0 || c.List != "" {
			return errors.New("command: haveSeq and list: only for resync")
		}
	case CmdResync:
		if c.ReviewID != "" || c.Action != "" || c.PIN != "" || c.By != "" {
			return errors.New("command: resync carries no reviewId, action, pin or by")
		}
		if c.List != "" && c.List != SubjectDenylist && c.List != SubjectAllowlist {
			return fmt.Errorf("command: list %q is not denylist or allowlist", c.List)
		}
	case "":
		return errors.New("command: type: required")
	default:
		return fmt.Errorf("command: type %q is not resolve or resync", string(c.Type))
	}
	return nil
}

// CheckTopic refuses a command whose target is not the register whose cmd
// topic it arrived on, so a command for one register cannot be replayed to
// another.
func (c *Command) CheckTopic(topic string) error {
	store, reg, kind, err := ParseRegTopic(topic)
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if kind != KindCmd {
		return fmt.Errorf("command: topic %q is not a cmd topic", topic)
	}
	if store != c.Store || reg != c.Register {
		return fmt.Errorf("command: addressed to %s/%s but arrived on %s", c.Store, c.Register, topic)
	}
	return nil
}

// Marshal validates and encodes the command (the PIN included: it is the
// wire form).
func (c Command) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// ParseCommand decodes and validates a command that arrived on topic.
func ParseCommand(topic string, data []byte) (Command, error) {
	var c Command
	if err := decodeStrict(data, MaxCommandBytes, "command", &c); err != nil {
		return Command{}, err
	}
	if err := c.Validate(); err != nil {
		return Command{}, err
	}
	if err := c.CheckTopic(topic); err != nil {
		return Command{}, err
	}
	return c, nil
}

// ---- Ack ----

// Ack is HQ's acknowledgement that it stored the events with these ids.
type Ack struct {
	IDs []string `json:"ids"`
}

// Validate checks the count and each id.
func (a *Ack) Validate() error {
	if len(a.IDs) == 0 {
		return errors.New("ack: ids: required, at least one")
	}
	if len(a.IDs) > MaxAckIDs {
		return fmt.Errorf("ack: %d ids, limit %d", len(a.IDs), MaxAckIDs)
	}
	for i, id := range a.IDs {
		if err := CheckEventID(id); err != nil {
			return fmt.Errorf("ack: ids[%d]: %w", i, err)
		}
	}
	return nil
}

// Marshal validates and encodes the ack.
func (a Ack) Marshal() ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// ParseAck decodes and validates an ack.
func ParseAck(data []byte) (Ack, error) {
	var a Ack
	if err := decodeStrict(data, MaxAckBytes, "ack", &a); err != nil {
		return Ack{}, err
	}
	if err := a.Validate(); err != nil {
		return Ack{}, err
	}
	return a, nil
}

// ---- Denylist ----

// MaxEpochLen bounds a denylist epoch.
const MaxEpochLen = 64

// ListVersion names one state of HQ's denylist. Epoch is the identity of the
// HQ store that keeps the list: made when that store is created and kept in
// it, so a fresh store, a move to another backend or a restored backup is
// told apart from the list a register has, even where the sequence numbers
// collide. Seq counts the changes made to the list in that epoch.
type ListVersion struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// CheckEpoch checks an epoch: 1..MaxEpochLen bytes of visible ASCII.
func CheckEpoch(e string) error {
	if e == "" {
		return errors.New("epoch: required")
	}
	if len(e) > MaxEpochLen {
		return fmt.Errorf("epoch: longer than %d bytes", MaxEpochLen)
	}
	return ascii.Visible("epoch", e)
}

// ListDetail says why an entry is on a list and until when. Accounts without
// a detail never expire.
type ListDetail struct {
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Rule      string    `json:"rule,omitempty"`   // the chain rule or "case:<id>" that added it
	Reason    string    `json:"reason,omitempty"` // for people, e.g. "account_stores: 3 stores in 30m"
	Events    []string  `json:"events,omitempty"` // ids of the events that caused it (HQ keeps them; may be trimmed on the wire)
}

// Delta is one signed change to the denylist. Seq goes up by exactly one per
// delta; a register that sees a gap asks for a resync.
type Delta struct {
	Epoch    string                `json:"epoch"`
	Seq      uint64                `json:"seq"`
	Add      []string              `json:"add,omitempty"`
	Remove   []string              `json:"remove,omitempty"`
	IssuedAt time.Time             `json:"issuedAt"`
	Details  map[string]ListDetail `json:"details,omitempty"` // only for accounts in add / accounts
}

// MaxDetailEvents bounds the event ids a list detail carries on the wire.
const MaxDetailEvents = 16

// Check reports what is wrong with a detail.
func (d ListDetail) Check() error {
	if err := checkText("rule", d.Rule, false); err != nil {
		return err
	}
	if err := checkText("reason", d.Reason, false); err != nil {
		return err
	}
	if len(d.Events) > MaxDetailEvents {
		return fmt.Errorf("events: %d ids, limit %d", len(d.Events), MaxDetailEvents)
	}
	for i, id := range d.Events {
		if err := CheckEventID(id); err != nil {
			return fmt.Errorf("events[%d]: %w", i, err)
		}
	}
	return nil
}

// checkDetails checks that every detail belongs to a listed account.
func checkDetails(details map[string]ListDetail, listed func(string) bool) error {
	for a, d := range details {
		if !listed(a) {
			return fmt.Errorf("details[%q]: account is not in the list's entries", a)
		}
		if err := d.Check(); err != nil {
			return fmt.Errorf("details[%q]: %w", a, err)
		}
	}
	return nil
}

// Validate checks the sequence, the entries and that no account is both
// added and removed (the order would be ambiguous).
func (d *Delta) Validate() error {
	if err := CheckEpoch(d.Epoch); err != nil {
		return fmt.Errorf("denylist delta: %w", err)
	}
	if d.Seq == 0 {
		return errors.New("denylist delta: seq: required, must be > 0")
	}
	if d.IssuedAt.IsZero() {
		return errors.New("denylist delta: issuedAt: required")
	}
	n := len(d.Add) + len(d.Remove)
	if n == 0 {
		return errors.New("denylist delta: add and remove both empty")
	}
	if n > MaxDeltaEntries {
		return fmt.Errorf("denylist delta: %d entries, limit %d", n, MaxDeltaEntries)
	}
	added := make(map[string]struct{}, len(d.Add))
	for i, a := range d.Add {
		if err := CheckAccount(a); err != nil {
			return fmt.Errorf("denylist delta: add[%d]: %w", i, err)
		}
		added[a] = struct{}{}
	}
	for i, a := range d.Remove {
		if err := CheckAccount(a); err != nil {
			return fmt.Errorf("denylist delta: remove[%d]: %w", i, err)
		}
		if _, ok := added[a]; ok {
			return fmt.Errorf("denylist delta: remove[%d]: %q is also added", i, a)
		}
	}
	if err := checkDetails(d.Details, func(a string) bool { _, ok := added[a]; return ok }); err != nil {
		return fmt.Errorf("denylist delta: %w", err)
	}
	return nil
}

// Marshal validates and encodes the delta (the payload to sign).
func (d Delta) Marshal() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(d)
}

// ParseDelta decodes and validates a delta payload (after bundle.Verify).
func ParseDelta(data []byte) (Delta, error) {
	var d Delta
	if err := decodeStrict(data, MaxDeltaBytes, "denylist delta", &d); err != nil {
		return Delta{}, err
	}
	if err := d.Validate(); err != nil {
		return Delta{}, err
	}
	return d, nil
}

// Snapshot is the signed full denylist as of delta Seq of its Epoch.
type Snapshot struct {
	Epoch    string                `json:"epoch"`
	Seq      uint64                `json:"seq"`
	Accounts []string              `json:"accounts"`
	IssuedAt time.Time             `json:"issuedAt"`
	Details  map[string]ListDetail `json:"details,omitempty"` // only for accounts in add / accounts
}

// Validate checks the entries. Duplicates are allowed: loading them into a
// set is harmless, and refusing them would cost a second set.
func (s *Snapshot) Validate() error {
	if err := CheckEpoch(s.Epoch); err != nil {
		return fmt.Errorf("denylist snapshot: %w", err)
	}
	if s.Accounts == nil {
		return errors.New("denylist snapshot: accounts: required (may be [])")
	}
	if s.IssuedAt.IsZero() {
		return errors.New("denylist snapshot: issuedAt: required")
	}
	if len(s.Accounts) > MaxSnapshotAccounts {
		return fmt.Errorf("denylist snapshot: %d accounts, limit %d", len(s.Accounts), MaxSnapshotAccounts)
	}
	for i, a := range s.Accounts {
		if err := CheckAccount(a); err != nil {
			return fmt.Errorf("denylist snapshot: accounts[%d]: %w", i, err)
		}
	}
	if len(s.Details) > 0 {
		listed := make(map[string]struct{}, len(s.Details))
		for _, a := range s.Accounts {
			if _, ok := s.Details[a]; ok {
				listed[a] = struct{}{}
			}
		}
		if err := checkDetails(s.Details, func(a string) bool { _, ok := listed[a]; return ok }); err != nil {
			return fmt.Errorf("denylist snapshot: %w", err)
		}
	}
	return nil
}

// Marshal validates and encodes the snapshot (the payload to sign).
func (s Snapshot) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Accounts == nil {
		s.Accounts = []string{}
	}
	return json.Marshal(s)
}

// ParseSnapshot decodes and validates a snapshot payload (after
// bundle.Verify).
func ParseSnapshot(data []byte) (Snapshot, error) {
	var s Snapshot
	if err := decodeStrict(data, MaxSnapshotBytes, "denylist snapshot", &s); err != nil {
		return Snapshot{}, err
	}
	if err := s.Validate(); err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

// Rollout states of a register for a pushed policy version (see
// Status.Rollout).
const (
	RolloutApplied = "applied" // runs the version
	RolloutRefused = "refused" // refused it, or runs a newer one and will
	RolloutPending = "pending" // online, not on it yet
	RolloutOffline = "offline" // offline: takes the retained bundle when back
)

// Rollout says where the register stands with policy version v, and why it
// refused it. `posguard policy push` and HQ's fleet view classify alike.
func (s Status) Rollout(v int64) (state, why string) {
	switch {
	case s.Refusal != nil && s.Refusal.Subject == SubjectPolicy && s.Refusal.Version == v:
		return RolloutRefused, s.Refusal.Reason
	case s.Policy != nil && s.Policy.Version == v:
		return RolloutApplied, ""
	case s.Policy != nil && s.Policy.Version > v:
		// It will refuse the push as not newer; say so without waiting.
		return RolloutRefused, fmt.Sprintf("already on newer v%d", s.Policy.Version)
	case !s.Online:
		return RolloutOffline, ""
	}
	return RolloutPending, ""
}
