// Package chain is HQ's second line: rules over the live event stream of
// every store (one account at many stores, an account refused at one store
// paying at another, a token seen at two stores ...), whose counts live in
// HQ's store so they survive a restart and are shared by every HQ instance.
// A rule that fires raises an HQ alert and, in enforce mode, takes its
// actions: the alert to the displays of the stores concerned, an automatic
// denylist entry with an expiry, a case for the fraud team.
package chain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/posguard/posguard/internal/yamlpath"
	"github.com/posguard/posguard/policy"
)

// MaxDocumentSize bounds a chain rules document.
const MaxDocumentSize = 1 << 20

// MaxWindow bounds a rule's window: HQ keeps the observations that long.
const MaxWindow = 30 * 24 * time.Hour

// Modes, as in a policy.
const (
	ModeEnforce = "enforce" // fire and act
	ModeShadow  = "shadow"  // fire (alert in HQ's feed, counted) but take no action
)

// Actions a rule may take in enforce mode.
const (
	ActionAlert    = "alert"    // to the displays of the stores concerned
	ActionDenylist = "denylist" // the accounts on HQ's denylist for denylistFor
	ActionCase     = "case"     // open or extend a case (CaseOpener)
)

// Document is a chain rules file.
type Document struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Rules      []Rule   `yaml:"rules"`
}

// Metadata names the document.
type Metadata struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
}

// Rule is one chain rule. Which fields a rule reads depends on its kind;
// a field its kind does not read is a problem, so nothing is silently
// ignored.
type Rule struct {
	ID          string          `yaml:"id"`
	Kind        string          `yaml:"kind"`
	Mode        string          `yaml:"mode,omitempty"`
	Description string          `yaml:"description,omitempty"`
	Window      policy.Duration `yaml:"window"`
	Actions     []string        `yaml:"actions,omitempty"`
	// DenylistFor is how long an automatic denylist entry lasts.
	DenylistFor policy.Duration `yaml:"denylistFor,omitempty"`

	MinStores   int             `yaml:"minStores,omitempty"`   // account_stores
	MinAccounts int             `yaml:"minAccounts,omitempty"` // store_new_accounts
	FreshFor    policy.Duration `yaml:"freshFor,omitempty"`    // store_new_accounts
	Expr        string          `yaml:"expr,omitempty"`        // expr
	Reason      string          `yaml:"reason,omitempty"`      // expr

	kind *ruleKind
	prog exprProgram // expr, compiled at load
}

// Has reports whether the rule takes action a (in enforce mode).
func (r *Rule) Has(a string) bool {
	for _, x := range r.Actions {
		if x == a {
			return true
		}
	}
	return false
}

// Problem is one thing wrong with a chain rules document.
type Problem struct {
	Path   string // "rules[2].window", or "line 7"
	Reason string
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// ValidationError lists every problem found in a document.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chain rules have %d problem(s)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// LoadFile reads and validates a chain rules file.
func LoadFile(path string) (*Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chain rules: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("read chain rules %s: %w", path, err)
	}
	d, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("chain rules %s: %w", path, err)
	}
	return d, nil
}

// Load decodes and validates a chain rules document. On any problem it
// returns a *ValidationError listing all of them.
func Load(data []byte) (*Document, error) {
	if len(data) > MaxDocumentSize {
		return nil, &ValidationError{Problems: []Problem{{Path: "document", Reason: fmt.Sprintf("size %d bytes exceeds %d", len(data), MaxDocumentSize)}}}
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // only for the key paths; Decode reports errors
	v := &validator{paths: yamlpath.Of(&root)}
	d := &Document{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(d); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, &ValidationError{Problems: []Problem{{Path: "document", Reason: "empty"}}}
		case errors.As(err, &te):
			for _, msg := range te.Errors {
				v.problems = append(v.problems, v.yamlProblem(msg))
			}
		default:
			return nil, &ValidationError{Problems: []Problem{v.yamlProblem(err.Error())}}
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		v.add("document", "more than one YAML document")
	} else if !errors.Is(err, io.EOF) {
		v.problems = append(v.problems, v.yamlProblem(err.Error()))
	}
	v.document(d)
	if len(v.problems) > 0 {
		return nil, &ValidationError{Problems: v.problems}
	}
	return d, nil
}

type validator struct {
	problems []Problem
	paths    yamlpath.Paths
	env      *exprEnv
	envErr   error
	envBuilt bool
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (v *validator) yamlProblem(msg string) Problem {
	pl, ok := v.paths.Locate(msg)
	if !ok {
		return Problem{Path: "document", Reason: strings.TrimPrefix(msg, "yaml: ")}
	}
	reason := pl.Reason
	if pl.UnknownField != "" {
		reason = fmt.Sprintf("unknown field %q", pl.UnknownField)
	}
	reason = strings.ReplaceAll(reason, "chain.", "")
	if !strings.HasPrefix(pl.Path, "line ") {
		reason += " (line " + strconv.Itoa(pl.Line) + ")"
	}
	return Problem{Path: pl.Path, Reason: reason}
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// ruleIDRE keeps rule ids fit for alert ids, metric labels and URLs.
var ruleIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func (v *validator) document(d *Document) {
	if d.APIVersion != "posguard/v1" {
		v.add("apiVersion", "must be posguard/v1, not %q", d.APIVersion)
	}
	if d.Kind != "ChainRules" {
		v.add("kind", "must be ChainRules, not %q", d.Kind)
	}
	if strings.TrimSpace(d.Metadata.Name) == "" {
		v.add("metadata.name", "is required")
	}
	if len(d.Rules) == 0 {
		v.add("rules", "at least one rule is required")
	}
	seen := map[string]int{}
	for i := range d.Rules {
		path := idx("rules", i)
		r := &d.Rules[i]
		switch first, dup := seen[r.ID]; {
		case r.ID == "":
			v.add(path+".id", "is required")
		case !ruleIDRE.MatchString(r.ID):
			v.add(path+".id", "%q: letters, digits, _ and - only, at most 64, starting with a letter or digit", r.ID)
		case dup:
			v.add(path+".id", "duplicate id %q (first at rules[%d])", r.ID, first)
		default:
			seen[r.ID] = i
		}
		v.rule(r, path)
	}
}

func (v *validator) rule(r *Rule, path string) {
	switch r.Mode {
	case "":
		r.Mode = ModeEnforce
	case ModeEnforce, ModeShadow:
	default:
		v.add(path+".mode", "must be enforce or shadow, not %q", r.Mode)
	}
	switch {
	case r.Window <= 0:
		v.add(path+".window", "must be > 0")
	case r.Window.D() > MaxWindow:
		v.add(path+".window", "%s is over the longest window, %s", r.Window.D(), MaxWindow)
	}
	acts := map[string]bool{}
	for i, a := range r.Actions {
		switch {
		case a != ActionAlert && a != ActionDenylist && a != ActionCase:
			v.add(idx(path+".actions", i), "must be alert, denylist or case, not %q", a)
		case acts[a]:
			v.add(idx(path+".actions", i), "duplicate action %q", a)
		}
		acts[a] = true
	}
	switch {
	case acts[ActionDenylist] && r.DenylistFor <= 0:
		v.add(path+".denylistFor", "must be > 0 with the denylist action (how long the automatic entry lasts)")
	case !acts[ActionDenylist] && r.DenylistFor != 0:
		v.add(path+".denylistFor", "only with the denylist action")
	}
	kind, ok := ruleKinds[r.Kind]
	if !ok {
		if r.Kind == "" {
			v.add(path+".kind", "is required")
		} else {
			v.add(path+".kind", "unknown rule kind %q (want %s)", r.Kind, kindNames())
		}
		return
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"minStores", r.MinStores != 0}, {"minAccounts", r.MinAccounts != 0}, {"freshFor", r.FreshFor != 0},
		{"expr", r.Expr != ""}, {"reason", r.Reason != ""}} {
		if f.set && !contains(kind.fields, f.name) {
			v.add(path+"."+f.name, "not used by kind %s", r.Kind)
		}
	}
	kind.check(&ruleCheck{v: v, r: r, path: path})
	r.kind = kind
}

// ruleCheck is one rule under validation, as its kind's check sees it.
type ruleCheck struct {
	v    *validator
	r    *Rule
	path string
}

func (c *ruleCheck) add(field, format string, args ...any) {
	c.v.add(c.path+"."+field, format, args...)
}

// between reports a count outside [lo, hi].
func (c *ruleCheck) between(field string, n, lo, hi int) {
	if n < lo || n > hi {
		c.add(field, "must be %d to %d, not %d", lo, hi, n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
