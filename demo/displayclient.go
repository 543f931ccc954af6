package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"time"

	"github.com/posguard/posguard/display"
	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/display/sse"
)

// displayClient does what the manager's browser does with the store
// display: open the page, read the live board, resolve a review.
type displayClient struct {
	base string
	http *http.Client
	csrf string
}

var csrfAttr = regexp.MustCompile(`data-csrf="([^"]+)"`)

func newDisplayClient(ctx context.Context, base string) (*displayClient, error) {
	jar, _ := cookiejar.New(nil)
	c := &displayClient{base: base, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open the display: %w", err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	m := csrfAttr.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		return nil, fmt.Errorf("open the display: %s, no CSRF token on the page", resp.Status)
	}
	c.csrf = string(m[1])
	return c, nil
}

// boardView is the first message of the page's event stream.
type boardView struct {
	board.Snapshot
	Broker struct {
		Connected bool `json:"connected"`
	} `json:"broker"`
}

func (c *displayClient) board(ctx context.Context) (boardView, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return boardView{}, fmt.Errorf("display events: %w", err)
	}
	defer resp.Body.Close()
	msg, err := sse.NewReader(resp.Body).Next()
	if err != nil {
		return boardView{}, fmt.Errorf("display events: %w", err)
	}
	var v boardView
	if err := json.Unmarshal(msg.Data, &v); err != nil {
		return boardView{}, fmt.Errorf("display snapshot: %w", err)
	}
	return v, nil
}

func (c *displayClient) resolve(ctx context.Context, register, reviewID, action, pin string) error {
	body, _ := json.Marshal(display.ResolveRequest{Register: register, ReviewID: reviewID, Action: action, PIN: pin})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/resolve", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.base)
	req.Header.Set(display.CSRFHeader, c.csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("resolve on the display: %w", err)
	}
	defer resp.Body.Close()
	var out display.ResolveResponse
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("resolve on the display: %s: %s", resp.Status, out.Error)
	}
	return nil
}

// waitAlert polls the board until the alert for saleID is in state.
func (c *displayClient) waitAlert(ctx context.Context, saleID, state string) (board.Alert, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := c.board(ctx)
		if err != nil {
			return board.Alert{}, err
		}
		for _, a := range v.Alerts {
			if a.SaleID == saleID && (state == "" || a.State == state) {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			return board.Alert{}, fmt.Errorf("the display never showed sale %s as %q", saleID, state)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return board.Alert{}, ctx.Err()
		}
	}
}
