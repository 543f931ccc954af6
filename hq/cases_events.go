package hq

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy/reason"
)

// caseAlert is one of a case's alerts in GET /v1/cases/{id}/events: the
// event, and its reasons as people read them, as GET /v1/alerts gives them.
type caseAlert struct {
	event.Event
	Text *alertText `json:"text,omitempty"`
}

// caseSale is a sale a case's alerts are about: where, when, who paid,
// how much, what the register decided, and which of the alerts name it.
type caseSale struct {
	Event    string    `json:"event"` // the id of the event that records it
	Store    string    `json:"store"`
	Register string    `json:"register"`
	SaleID   string    `json:"saleId"`
	At       time.Time `json:"at"`
	Account  string    `json:"account,omitempty"`
	Outcome  string    `json:"outcome,omitempty"`
	Total    int64     `json:"total"` // yen
	Items    int       `json:"items"`
	Rules    []string  `json:"rules,omitempty"` // the rules that fired
	Alerts   []string  `json:"alerts"`
}

// textOf renders an alert's reasons in both languages: a register's from
// its decision's fired rules through the display's templates, a chain
// rule's as the rule worded it.
func textOf(ev event.Event) *alertText {
	switch {
	case ev.Decision != nil && len(ev.Decision.Rules) > 0:
		return &alertText{JA: reason.Decision(reason.Japanese, *ev.Decision), EN: reason.Decision(reason.English, *ev.Decision)}
	case ev.Chain != nil:
		line := ev.Chain.Rule + ": " + ev.Chain.Reason
		if ev.Chain.Mode == "shadow" {
			line += " (shadow)"
		}
		return &alertText{JA: []string{line}, EN: []string{line}}
	}
	return nil
}

// saleOf is the sale ev records, if it records one.
func saleOf(ev event.Event) (caseSale, bool) {
	if ev.Request == nil {
		return caseSale{}, false
	}
	s := caseSale{Event: ev.ID, Store: ev.Store, Register: ev.Register, SaleID: ev.SaleID, At: ev.At,
		Account: ev.Request.Payment.Account, Alerts: []string{}}
	for _, l := range ev.Request.Lines {
		s.Total += int64(l.Quantity) * l.UnitPrice
		s.Items += l.Quantity
	}
	if d := ev.Decision; d != nil {
		s.Outcome = string(d.Outcome)
		for _, f := range d.Rules {
			s.Rules = append(s.Rules, f.ID)
		}
	}
	return s, true
}

// caseEvents serves a page of a case's alerts (limit, cursor: the next of
// the previous page) with the sales they are about: a register's alert
// records its sale; a chain rule's names the events that tripped it, read
// by id. Every read is by index.
func (s *Service) caseEvents(w http.ResponseWriter, r *http.Request) {
	cur, err := store.ParseCursor(r.FormValue("cursor"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	limit, err := pageLimit(r, store.DefaultListLimit, store.MaxListLimit)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	alerts, err := s.cfg.Store.CaseAlerts(r.Context(), r.PathValue("id"), store.CaseAlertQuery{After: cur, Limit: limit})
	if err != nil {
		caseError(w, err)
		return
	}
	out := make([]caseAlert, len(alerts))
	var named []string
	for i, a := range alerts {
		out[i] = caseAlert{Event: a, Text: textOf(a)}
		if a.Chain != nil {
			named = append(named, a.Chain.Events...)
		}
	}
	tripped, err := s.cfg.Store.EventsByID(r.Context(), named)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	byID := make(map[string]event.Event, len(tripped))
	for _, ev := range tripped {
		byID[ev.ID] = ev
	}
	// One row per sale (store, register, sale id), however many alerts
	// name it.
	sales := map[string]*caseSale{}
	add := func(ev event.Event, alert string) {
		sl, ok := saleOf(ev)
		if !ok {
			return
		}
		k := sl.Store + "/" + sl.Register + "/" + sl.SaleID
		if sales[k] == nil {
			sales[k] = &sl
		}
		if !slices.Contains(sales[k].Alerts, alert) {
			sales[k].Alerts = append(sales[k].Alerts, alert)
		}
	}
	for _, a := range alerts {
		add(a, a.ID)
		if a.Chain != nil {
			for _, id := range a.Chain.Events {
				if ev, ok := byID[id]; ok {
					add(ev, a.ID)
				}
			}
		}
	}
	rows := make([]caseSale, 0, len(sales))
	for _, sl := range sales {
		rows = append(rows, *sl)
	}
	slices.SortFunc(rows, func(a, b caseSale) int { return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Event, b.Event)) })
	next := ""
	if len(alerts) == limit {
		next = store.CursorOf(alerts[len(alerts)-1]).String()
	}
	writeJSON(w, map[string]any{"alerts": out, "sales": rows, "next": next})
}
