// Package yamlpath names where a go-yaml decoding error is by the key path
// of the document (rules[0].window, scanner.baud) instead of only its line,
// for the policy loader and the agent configuration alike.
package yamlpath

import (
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Paths maps a line of the document to the key path that starts on it.
type Paths map[int]string

// Of records the key path of every line of the document under root.
func Of(root *yaml.Node) Paths {
	p := Paths{}
	p.walk(root, "")
	return p
}

func (p Paths) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			p.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := k.Value
			if path != "" {
				kp = path + "." + k.Value
			}
			p.mark(k.Line, kp)
			p.walk(v, kp)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			ip := path + "[" + strconv.Itoa(i) + "]"
			p.mark(c.Line, ip)
			p.walk(c, ip)
		}
	}
}

// mark keeps the first (outermost) path of a line: in a flow mapping
// "{a: 1, b: 2}" the line belongs to the key holding it.
func (p Paths) mark(line int, path string) {
	if _, ok := p[line]; !ok {
		p[line] = path
	}
}

// Place is where a go-yaml message points.
type Place struct {
	Path   string // key path, or "line N" when no key starts on the line
	Line   int
	Reason string // the message without its "line N:" prefix
	// UnknownField is the field named by KnownFields' "field X not found
	// in type T", so callers can word it for their readers.
	UnknownField string
}

var (
	lineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// Locate reads a go-yaml message of the form "line N: reason"; ok is false
// for a message that names no line.
func (p Paths) Locate(msg string) (pl Place, ok bool) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return Place{}, false
	}
	pl.Line, _ = strconv.Atoi(m[1])
	pl.Reason = m[2]
	if u := unknownRE.FindStringSubmatch(pl.Reason); u != nil {
		pl.UnknownField = u[1]
	}
	pl.Path = p[pl.Line]
	if pl.Path == "" {
		pl.Path = "line " + m[1]
	}
	return pl, true
}
