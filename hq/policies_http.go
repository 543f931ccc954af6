package hq

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"

	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/policydiff"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// maxPolicyBody bounds POST /v1/policies: a bundle (1 MiB + 4 KiB) in
// base64, and the scope.
const maxPolicyBody = (bundle.MaxPolicyBytes+2)/3*4 + 1<<10

func (s *Service) policyRoutes() []Route {
	return []Route{
		{"GET /v1/policies", apiauth.Read, http.HandlerFunc(s.policyList)},
		{"POST /v1/policies", apiauth.Admin, httpserve.JSONOnly(http.HandlerFunc(s.policyPush))},
		{"GET /v1/policies/diff", apiauth.Read, http.HandlerFunc(s.policyDiff)},
		{"GET /v1/policies/{version}", apiauth.Read, http.HandlerFunc(s.policyGet)},
		{"GET /v1/policies/{version}/report", apiauth.Read, http.HandlerFunc(s.policyReport)},
	}
}

// policyList is a page of versions, newest first, and what HQ can verify.
type policyList struct {
	Versions []store.PolicyVersion `json:"versions"`
	// Next is the before= of the next page; 0 on the last.
	Next int64 `json:"next"`
	// VerifyKeys are the key ids HQ verifies pushed bundles with; empty,
	// it records and accepts none.
	VerifyKeys []string `json:"verifyKeys"`
}

func (s *Service) policyList(w http.ResponseWriter, r *http.Request) {
	var q store.PolicyQuery
	var err error
	if v := r.FormValue("before"); v != "" {
		if q.Before, err = strconv.ParseInt(v, 10, 64); err != nil || q.Before < 1 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("before: want a version ≥ 1, got %q", v))
			return
		}
	}
	if v := r.FormValue("limit"); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 1 || q.Limit > store.MaxPolicyLimit {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit: want 1 to %d, got %q", store.MaxPolicyLimit, v))
			return
		}
	}
	vs, err := s.cfg.Store.PolicyVersions(r.Context(), q)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	out := policyList{Versions: vs, VerifyKeys: []string{}}
	if n := q.Limit; n == 0 && len(vs) == store.DefaultPolicyLimit || n > 0 && len(vs) == n {
		out.Next = vs[len(vs)-1].Version
	}
	for _, k := range s.cfg.PolicyKeys {
		out.VerifyKeys = append(out.VerifyKeys, k.KID)
	}
	writeJSON(w, out)
}

type policyPushRequest struct {
	Bundle []byte `json:"bundle"` // the signed bundle (`posguard policy sign`), base64
	Scope  string `json:"scope"`  // "all" (default) or a store id
}

type policyPushAnswer struct {
	store.PolicyVersion
	New     bool   `json:"new"` // false: this bundle was already recorded
	Warning string `json:"warning,omitempty"`
}

func (s *Service) policyPush(w http.ResponseWriter, r *http.Request) {
	var req policyPushRequest
	if !decodeStrict(w, r, maxPolicyBody, &req) {
		return
	}
	if len(req.Bundle) == 0 {
		httpError(w, http.StatusBadRequest, errors.New("bundle: want the signed policy bundle (posguard policy sign), base64"))
		return
	}
	if req.Scope == "" {
		req.Scope = wire.ScopeAll
	}
	by, ok := caller(w, r)
	if !ok {
		return
	}
	rec, inserted, err := s.PushPolicy(r.Context(), req.Bundle, req.Scope, by)
	switch {
	case errors.Is(err, ErrNoPolicyKeys):
		httpError(w, http.StatusServiceUnavailable, err)
	case errors.Is(err, ErrBadPolicy):
		httpError(w, http.StatusBadRequest, err)
	case errors.Is(err, store.ErrPolicyConflict):
		httpError(w, http.StatusConflict, fmt.Errorf("%w; a changed policy needs a higher version", err))
	case err != nil && rec.Version == 0:
		httpError(w, http.StatusInternalServerError, err)
	default:
		ans := policyPushAnswer{PolicyVersion: rec, New: inserted}
		code := http.StatusOK
		if inserted {
			code = http.StatusCreated
		}
		if err != nil { // recorded, not published
			ans.Warning, code = err.Error(), http.StatusAccepted
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		writeJSON(w, ans)
	}
}

// versionParam reads a version from the path or a query parameter.
func versionParam(w http.ResponseWriter, name, v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		httpError(w, http.StatusBadRequest, fmt.Errorf("%s: want a policy version ≥ 1, got %q", name, v))
		return 0, false
	}
	return n, true
}

// policyVersion is the record of one version with its document, as the
// canonical JSON and as YAML.
func (s *Service) policyVersion(w http.ResponseWriter, r *http.Request, name, v string) (store.PolicyVersion, []byte, bool) {
	n, ok := versionParam(w, name, v)
	if !ok {
		return store.PolicyVersion{}, nil, false
	}
	rec, err := s.cfg.Store.PolicyVersion(r.Context(), n)
	if errors.Is(err, store.ErrPolicyNotFound) {
		httpError(w, http.StatusNotFound, err)
		return rec, nil, false
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return rec, nil, false
	}
	y, err := policydiff.YAML(rec.Document)
	if err != nil {
		httpError(w, http.StatusInternalServerError, fmt.Errorf("v%d: %w", n, err))
		return rec, nil, false
	}
	return rec, y, true
}

type policyDocument struct {
	store.PolicyVersion
	Document jsonRaw `json:"document"` // the canonical JSON the registers verify
	YAML     string  `json:"yaml"`
}

// jsonRaw is stored JSON passed through as is.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

func (s *Service) policyGet(w http.ResponseWriter, r *http.Request) {
	rec, y, ok := s.policyVersion(w, r, "version", r.PathValue("version"))
	if ok {
		writeJSON(w, policyDocument{PolicyVersion: rec, Document: jsonRaw(rec.Document), YAML: string(y)})
	}
}

type policyDiffAnswer struct {
	From int64  `json:"from"`
	To   int64  `json:"to"`
	Diff string `json:"diff"` // unified, "" when the documents are the same
}

func (s *Service) policyDiff(w http.ResponseWriter, r *http.Request) {
	from, _, ok := s.policyVersion(w, r, "from", r.FormValue("from"))
	if !ok {
		return
	}
	to, _, ok := s.policyVersion(w, r, "to", r.FormValue("to"))
	if !ok {
		return
	}
	label := func(v store.PolicyVersion) string { return fmt.Sprintf("%s v%d", v.Name, v.Version) }
	d, err := policydiff.Unified(policydiff.Side{Label: label(from), Document: from.Document},
		policydiff.Side{Label: label(to), Document: to.Document})
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, policyDiffAnswer{From: from.Version, To: to.Version, Diff: d})
}

// policyReport serves the version's backtest report: the HTML page when
// it is made, a page that reloads itself meanwhile (202), or, with
// format=json, the report's state.
func (s *Service) policyReport(w http.ResponseWriter, r *http.Request) {
	n, ok := versionParam(w, "version", r.PathValue("version"))
	if !ok {
		return
	}
	j, err := s.report(r.Context(), n)
	if errors.Is(err, store.ErrPolicyNotFound) {
		httpError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	st := j.status()
	if r.FormValue("format") == "json" {
		writeJSON(w, st)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch st.State {
	case reportDone:
		j.mu.Lock()
		page := j.html
		j.mu.Unlock()
		w.Write(page)
		return
	case reportFailed:
		w.WriteHeader(http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
	reportWait.Execute(w, st)
}

// reportWait is the page shown while a report is made (it reloads itself)
// or when making it failed.
var reportWait = template.Must(template.New("wait").Parse(`<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
{{if ne .State "failed"}}<meta http-equiv="refresh" content="2">{{end}}
<title>v{{.Version}} backtest</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;color:#222}</style></head>
<body data-state="{{.State}}">
{{if eq .State "failed"}}<h1>バックテストに失敗しました / The backtest failed</h1><p>{{.Error}}</p>
{{else}}<h1>v{{.Version}} のバックテストを実行中… / Backtesting v{{.Version}}…</h1>
<p>読み込んだ取引 / decisions read: {{.Read}}</p>{{end}}
</body></html>
`))

// decodeStrict reads a JSON body of at most max bytes into v, refusing
// unknown fields and anything after the object.
func decodeStrict(w http.ResponseWriter, r *http.Request, max int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return false
	}
	return true
}
