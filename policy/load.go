package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/posguard/posguard/internal/yamlpath"
	"github.com/posguard/posguard/policy/sale"
)

// MaxDocumentSize bounds what Load reads: a policy is a few kilobytes, and a
// register must not be made to parse megabytes.
const MaxDocumentSize = 1 << 20

// Problem is one thing wrong with a policy document.
type Problem struct {
	Path   string // "rules[2].window", or "line 7" for YAML-level errors
	Reason string
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// ValidationError lists every problem found in a policy document.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy has %d problem(s)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// LoadFile reads and validates a policy file.
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err) // the *PathError names the file
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	p, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// Load decodes and validates a policy document (YAML, or its canonical
// JSON). On any problem it returns a *ValidationError listing all of them.
func Load(data []byte) (*Policy, error) {
	if len(data) > MaxDocumentSize {
		return nil, &ValidationError{Problems: []Problem{{Path: "document", Reason: fmt.Sprintf("size %d bytes exceeds %d", len(data), MaxDocumentSize)}}}
	}
	p := &Policy{}
	// The node tree names the key path of each line, so go-yaml's
	// line-numbered errors can say where they are.
	var root yaml.Node
	rootErr := yaml.Unmarshal(data, &root)
	v := &validator{paths: yamlpath.Of(&root)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, &ValidationError{Problems: []Problem{{Path: "document", Reason: "empty"}}}
		case errors.As(err, &te):
			// Type errors leave the rest decoded: go on and report the
			// semantic problems too, all at once.
			for _, msg := range te.Errors {
				v.problems = append(v.problems, v.yamlProblem(msg))
			}
		default:
			return nil, &ValidationError{Problems: []Problem{v.yamlProblem(err.Error())}}
		}
	}
	// go-yaml truncates 2.5 into an int field without a word; the policy has
	// no fractional fields, so any float in the document is a mistake.
	if rootErr == nil {
		v.floats(&root)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		v.add("document", "more than one YAML document")
	} else if !errors.Is(err, io.EOF) {
		v.problems = append(v.problems, v.yamlProblem(err.Error()))
	}
	v.policy(p)
	if len(v.problems) > 0 {
		return nil, &ValidationError{Problems: v.problems}
	}
	p.evals = &sync.Pool{}
	return p, nil
}

// yamlProblem turns a go-yaml message into a Problem at the key path of
// its line (the line itself when no key starts there), and rewrites its
// Go-centric wording for policy authors.
func (v *validator) yamlProblem(msg string) Problem {
	pl, ok := v.paths.Locate(msg)
	if !ok {
		return Problem{Path: "document", Reason: strings.TrimPrefix(msg, "yaml: ")}
	}
	reason := pl.Reason
	if pl.UnknownField != "" {
		reason = fmt.Sprintf("unknown field %q", pl.UnknownField)
	}
	return v.atLine(pl.Path, pl.Line, strings.ReplaceAll(reason, "policy.", ""))
}

// atLine is a problem found by line: the key path, and the line too so an
// author can find it in a long file.
func (v *validator) atLine(path string, line int, reason string) Problem {
	if !strings.HasPrefix(path, "line ") {
		reason += " (line " + strconv.Itoa(line) + ")"
	}
	return Problem{Path: path, Reason: reason}
}

type validator struct {
	problems []Problem
	paths    yamlpath.Paths
	env      *celEnv // see expressionEnv
	envBuilt bool
}

func (v *validator) floats(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!float" {
		path := v.paths[n.Line]
		if path == "" {
			path = "line " + strconv.Itoa(n.Line)
		}
		v.problems = append(v.problems, v.atLine(path, n.Line, n.Value+" is not an integer (amounts are integer yen, counts whole items)"))
	}
	for _, c := range n.Content {
		v.floats(c)
	}
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func validAction(a string) bool { return a == string(Review) || a == string(Deny) }

func (v *validator) policy(p *Policy) {
	if p.APIVersion != "posguard/v1" {
		v.add("apiVersion", "must be posguard/v1, not %q", p.APIVersion)
	}
	if p.Kind != "Policy" {
		v.add("kind", "must be Policy, not %q", p.Kind)
	}
	v.metadata(&p.Metadata)
	for i, s := range p.Scope.Stores {
		if strings.TrimSpace(s) == "" {
			v.add(idx("scope.stores", i), "must not be empty")
		}
	}
	v.catalog(p)
	v.tokens(&p.Tokens)
	seen := map[string]int{}
	for i := range p.Rules {
		path := idx("rules", i)
		r := &p.Rules[i]
		if r.ID == "" {
			v.add(path+".id", "is required")
		} else if first, dup := seen[r.ID]; dup {
			v.add(path+".id", "duplicate id %q (first at rules[%d])", r.ID, first)
		} else {
			seen[r.ID] = i
		}
		v.rule(p, r, path)
	}
	v.offline(p)
	v.failMode(p)
	v.scores(p)
}

func (v *validator) metadata(m *Metadata) {
	if strings.TrimSpace(m.Name) == "" {
		v.add("metadata.name", "is required")
	}
	if m.Version < 1 {
		v.add("metadata.version", "must be >= 1")
	}
	if m.IssuedAt.IsZero() {
		v.add("metadata.issuedAt", "is required")
	}
	if m.ExpiresAt.IsZero() {
		v.add("metadata.expiresAt", "is required")
	} else if !m.IssuedAt.IsZero() && !m.ExpiresAt.After(m.IssuedAt) {
		v.add("metadata.expiresAt", "must be after issuedAt")
	}
	m.IssuedAt = m.IssuedAt.UTC()
	m.ExpiresAt = m.ExpiresAt.UTC()
}

func (v *validator) catalog(p *Policy) {
	c := &p.Catalog
	p.labels = map[string]string{"unknown": "unknown items"}
	p.names = map[string]sale.Names{"unknown": {ID: "unknown", JA: "不明な商品", EN: "unknown items"}}
	for i := range c.Categories {
		path := idx("catalog.categories", i)
		cat := &c.Categories[i]
		switch {
		case cat.ID == "":
			v.add(path+".id", "is required")
			continue
		case cat.ID == "unknown":
			v.add(path+".id", "\"unknown\" is built in (items the catalog does not know)")
			continue
		case len(cat.ID) > MaxText:
			v.add(path+".id", "%d bytes, at most %d", len(cat.ID), MaxText)
			continue
		}
		if _, dup := p.labels[cat.ID]; dup {
			v.add(path+".id", "duplicate category %q", cat.ID)
			continue
		}
		switch {
		case cat.Label == "" && cat.Names.EN != "":
			cat.Label = cat.Names.EN
		case cat.Label == "":
			cat.Label = cat.ID
		case cat.Names.EN != "" && cat.Names.EN != cat.Label:
			v.add(path+".names.en", "%q differs from label %q: give one of them", cat.Names.EN, cat.Label)
		}
		for _, n := range []struct{ key, name string }{{"ja", cat.Names.JA}, {"en", cat.Names.EN}} {
			if len(n.name) > MaxText {
				v.add(path+".names."+n.key, "%d bytes, at most %d", len(n.name), MaxText)
			}
		}
		p.labels[cat.ID] = cat.Label
		en := cat.Names.EN
		if en == "" {
			en = cat.Label
		}
		p.names[cat.ID] = sale.Names{ID: cat.ID, JA: cat.Names.JA, EN: en}
	}
	p.items = make(map[string]int, len(c.Items))
	for i := range c.Items {
		path := idx("catalog.items", i)
		it := &c.Items[i]
		if err := checkGTIN(it.JAN); err != nil {
			v.add(path+".jan", "%v", err)
		} else if first, dup := p.items[it.JAN]; dup {
			v.add(path+".jan", "duplicate JAN %s (first at catalog.items[%d])", it.JAN, first)
		} else {
			p.items[it.JAN] = i
		}
		v.itemData(p, path, it.Name, it.Category, it.UnitPrice, &it.Units)
	}
	for i := range c.Ranges {
		path := idx("catalog.ranges", i)
		r := &c.Ranges[i]
		switch {
		case !allDigits(r.From) || len(r.From) == 0 || len(r.From) > 13:
			v.add(path+".from", "must be 1 to 13 digits")
		case len(r.To) != len(r.From) || !allDigits(r.To):
			v.add(path+".to", "must be %d digits, like from", len(r.From))
		case r.To < r.From:
			v.add(path+".to", "must not be below from (%s)", r.From)
		default:
			p.ranges = append(p.ranges, i)
		}
		v.itemData(p, path, r.Name, r.Category, r.UnitPrice, &r.Units)
	}
	// Most specific (longest) prefix first, so a maker's block can carve out
	// a sub-range with another category.
	sort.SliceStable(p.ranges, func(a, b int) bool {
		return len(c.Ranges[p.ranges[a]].From) > len(c.Ranges[p.ranges[b]].From)
	})
}

func (v *validator) itemData(p *Policy, path, name, category string, price int64, units *int) {
	if strings.TrimSpace(name) == "" {
		v.add(path+".name", "is required")
	}
	if category == "" {
		v.add(path+".category", "is required")
	} else if _, ok := p.labels[category]; !ok {
		v.add(path+".category", "unknown category %q", category)
	}
	if price < 0 {
		v.add(path+".unitPrice", "must be >= 0")
	}
	v.atMost(path+".unitPrice", price, MaxUnitPrice)
	switch {
	case *units < 0:
		v.add(path+".units", "must be >= 1")
	case *units == 0:
		*units = 1
	}
	v.atMost(path+".units", int64(*units), MaxItemUnits)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (v *validator) tokens(t *Tokens) {
	if t.MaxAge == 0 {
		t.MaxAge = Duration(5 * time.Minute)
	} else if t.MaxAge < 0 {
		v.add("tokens.maxAge", "must be > 0")
	}
	if t.ClockSkew == 0 {
		t.ClockSkew = Duration(30 * time.Second)
	} else if t.ClockSkew < 0 {
		v.add("tokens.clockSkew", "must be > 0")
	}
	issuers := map[string]bool{}
	for i := range t.Issuers {
		path := idx("tokens.issuers", i)
		is := &t.Issuers[i]
		if is.Name == "" {
			v.add(path+".iss", "is required")
		} else if issuers[is.Name] {
			v.add(path+".iss", "duplicate issuer %q", is.Name)
		}
		issuers[is.Name] = true
		if len(is.Keys) == 0 {
			v.add(path+".keys", "needs at least one key")
		}
		kids := map[string]bool{}
		for j := range is.Keys {
			kpath := idx(path+".keys", j)
			k := &is.Keys[j]
			if k.KID == "" {
				v.add(kpath+".kid", "is required")
			} else if kids[k.KID] {
				v.add(kpath+".kid", "duplicate kid %q", k.KID)
			}
			kids[k.KID] = true
			k.NotAfter = k.NotAfter.UTC()
			pub, err := parsePublicKey(k.Alg, k.PublicKey)
			if err != nil {
				v.add(kpath+".publicKey", "%v", err)
				continue
			}
			k.Public = pub
		}
	}
	for i := range t.Opaque {
		path := idx("tokens.opaque", i)
		o := &t.Opaque[i]
		if o.Name == "" {
			v.add(path+".name", "is required")
		}
		if o.Pattern == "" {
			v.add(path+".pattern", "is required")
		} else if re, err := regexp.Compile(`^(?:` + o.Pattern + `)$`); err != nil {
			v.add(path+".pattern", "%v", err)
		} else {
			o.Re = re
		}
		if o.MinLength < 0 {
			v.add(path+".minLength", "must be >= 0")
		}
		if o.MaxLength < 0 || (o.MaxLength > 0 && o.MaxLength < o.MinLength) {
			v.add(path+".maxLength", "must be >= minLength (%d)", o.MinLength)
		}
	}
}

// parsePublicKey decodes a PEM PKIX public key and checks it fits alg: a
// key of the wrong type would make every token of that issuer fail, and
// better the lint says so than the till.
func parsePublicKey(alg, text string) (any, error) {
	if alg != "EdDSA" && alg != "ES256" {
		return nil, fmt.Errorf("alg %q is not EdDSA or ES256", alg)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("text after the PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKIX key: %w", err)
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("key is Ed25519 but alg is %s", alg)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if alg != "ES256" {
			return nil, fmt.Errorf("key is ECDSA but alg is %s", alg)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key is on %s, ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("key type %T is not Ed25519 or ECDSA P-256", pub)
	}
}

func (v *validator) offline(p *Policy) {
	o := &p.Offline
	switch o.Action {
	case "":
		o.Action = string(Review)
	case string(Review), string(Deny):
	default:
		v.add("offline.action", "must be review or deny, not %q", o.Action)
	}
	if o.MaxSaleAmount != nil && *o.MaxSaleAmount < 0 {
		v.add("offline.maxSaleAmount", "must be >= 0")
	}
	v.maxAmount("offline.maxSaleAmount", o.MaxSaleAmount)
	p.offlineIDs = make([]string, len(o.Categories))
	for i, l := range o.Categories {
		path := idx("offline.categories", i)
		if _, ok := p.labels[l.Category]; !ok {
			v.add(path+".category", "unknown category %q", l.Category)
		}
		if l.MaxQuantity == nil && l.MaxAmount == nil {
			v.add(path, "needs maxQuantity or maxAmount")
		}
		if l.MaxQuantity != nil && *l.MaxQuantity < 0 {
			v.add(path+".maxQuantity", "must be >= 0")
		}
		if l.MaxAmount != nil && *l.MaxAmount < 0 {
			v.add(path+".maxAmount", "must be >= 0")
		}
		v.maxCount(path+".maxQuantity", l.MaxQuantity)
		v.maxAmount(path+".maxAmount", l.MaxAmount)
		p.offlineIDs[i] = "offline:" + l.Category
	}
}

func (v *validator) failMode(p *Policy) {
	f := &p.FailMode
	switch f.Action {
	case "":
		f.Action = string(Review)
	case string(Review), string(Deny):
	default:
		v.add("failMode.action", "must be review or deny, not %q", f.Action)
	}
	for i, c := range f.Categories {
		if _, ok := p.labels[c]; !ok {
			v.add(idx("failMode.categories", i), "unknown category %q", c)
		}
	}
	if f.MaxSaleAmount != nil && *f.MaxSaleAmount < 0 {
		v.add("failMode.maxSaleAmount", "must be >= 0")
	}
	v.maxAmount("failMode.maxSaleAmount", f.MaxSaleAmount)
	switch f.InvalidToken {
	case "":
		f.InvalidToken = string(Deny)
	case string(Review), string(Deny):
	default:
		v.add("failMode.invalidToken", "must be review or deny, not %q (an invalid token is never allowed)", f.InvalidToken)
	}
	switch f.UnknownToken {
	case "":
		f.UnknownToken = string(Review)
	case string(Allow), string(Review), string(Deny):
	default:
		v.add("failMode.unknownToken", "must be allow, review or deny, not %q", f.UnknownToken)
	}
}
