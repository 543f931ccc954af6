package display

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/internal/ascii"
	"github.com/posguard/posguard/internal/atomicfile"
	"github.com/posguard/posguard/wire"
)

// stateFormat names the layout of the display's state file.
const stateFormat = "posguard-display-state/1"

// maxStateFile bounds what is read back: the board keeps DefaultKeep
// finished alerts plus the open reviews, far below this.
const maxStateFile = 16 << 20

// stateDoc is the state file: the alerts of the board, so open reviews and
// the recent history survive a display restart. Register tiles are not
// kept: the registers' retained status brings them back on connect.
type stateDoc struct {
	Format  string    `json:"format"`
	Store   string    `json:"store"`
	SavedAt time.Time `json:"savedAt"`
	// ClientID is the display's MQTT client id. Kept so a restarted
	// display resumes its broker session and receives the alerts queued
	// for it while it was down.
	ClientID string        `json:"clientId,omitempty"`
	Alerts   []board.Alert `json:"alerts"` // oldest first
}

// parseState reads a state file of store, refusing anything it would have
// to guess about.
func parseState(data []byte, store string) (stateDoc, error) {
	if len(data) > maxStateFile {
		return stateDoc{}, fmt.Errorf("%d bytes, more than %d", len(data), maxStateFile)
	}
	var doc stateDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return stateDoc{}, fmt.Errorf("not a display state file: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return stateDoc{}, errors.New("trailing data after the JSON object")
	}
	if doc.Format != stateFormat {
		return stateDoc{}, fmt.Errorf("format %q, this build reads %q", doc.Format, stateFormat)
	}
	if doc.Store != store {
		return stateDoc{}, fmt.Errorf("it is store %q's, not %q's", doc.Store, store)
	}
	if doc.ClientID != "" {
		if err := checkClientID(doc.ClientID, store); err != nil {
			return stateDoc{}, err
		}
	}
	for i, a := range doc.Alerts {
		if err := checkSavedAlert(a); err != nil {
			return stateDoc{}, fmt.Errorf("alerts[%d]: %w", i, err)
		}
	}
	return doc, nil
}

// checkClientID accepts the ids displays have used: the store's display
// username, and (before brokers bound client ids to identities) it plus a
// slash and a short suffix of visible ASCII.
func checkClientID(id, store string) error {
	prefix := wire.DisplayUsername(store) + "/"
	if id == wire.DisplayUsername(store) {
		return nil
	}
	if !strings.HasPrefix(id, prefix) || len(id) == len(prefix) || len(id) > 128 {
		return fmt.Errorf("client id %q is not one of store %q's displays", id, store)
	}
	return ascii.Visible("client id", id)
}

func checkSavedAlert(a board.Alert) error {
	switch {
	case a.ID == "":
		return errors.New("id is required")
	case a.Register == "":
		return errors.New("register is required")
	case a.At.IsZero():
		return errors.New("at is required")
	}
	switch a.Outcome {
	case "deny":
		if a.State != "" {
			return fmt.Errorf("a deny has no review state, got %q", a.State)
		}
	case "review":
		switch a.State {
		case board.Open, board.Sent, board.Approved, board.Rejected, board.TimedOut:
		default:
			return fmt.Errorf("review state %q is not one of open, sent, approved, rejected, timeout", a.State)
		}
		if a.ReviewID == "" {
			return errors.New("a review needs its reviewId")
		}
	default:
		return fmt.Errorf("outcome %q is not deny or review", a.Outcome)
	}
	return nil
}

// loadState restores the board from the state file, if there is one. A
// file that cannot be parsed is moved aside (never overwritten: it may be
// the only record of an open review) and the display starts empty.
func (s *Server) loadState() error {
	path := s.cfg.StateFile
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("display: read state %s: %w", path, err)
	}
	doc, err := parseState(data, s.cfg.Store)
	if err != nil {
		aside := fmt.Sprintf("%s.bad-%s", path, s.now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return fmt.Errorf("display: state %s: %v; moving it aside: %w", path, err, rerr)
		}
		s.log.Error("state file unreadable; moved aside, starting with an empty board", "file", path, "moved-to", aside, "err", err)
		return nil
	}
	// The client id is the identity now; an id saved by an older display
	// (display/STORE/suffix) is not reused.
	n := s.board.Restore(doc.Alerts, s.now())
	s.log.Info("board restored", "file", path, "alerts", n, "client-id", s.clientID)
	return nil
}

// saveState writes the board's alerts when they changed since the last
// save. atomicfile writes a temporary file, syncs it and renames it over the
// old one, so a crash mid-save leaves the previous state, never half of one.
func (s *Server) saveState() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	alerts := s.board.Alerts()
	body, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("display: encode state: %w", err)
	}
	if bytes.Equal(body, s.saved) {
		return nil
	}
	doc, err := json.MarshalIndent(stateDoc{Format: stateFormat, Store: s.cfg.Store, SavedAt: s.now().UTC(), ClientID: s.clientID, Alerts: alerts}, "", " ")
	if err != nil {
		return fmt.Errorf("display: encode state: %w", err)
	}
	if err := atomicfile.WriteFile(s.cfg.StateFile, doc, 0o600); err != nil {
		return fmt.Errorf("display: save state: %w", err)
	}
	s.saved = body
	return nil
}
