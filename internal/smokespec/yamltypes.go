package smokespec

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// The raw* types and the field types below are what the YAML decoder fills
// (with KnownFields, so an unknown key is an error). Every value keeps the
// line it came from, so that a later error (unset variable, bad regex) can
// name it; substitution and validation happen after decoding, in build.

type rawSpec struct {
	// Templates holds YAML anchors for checks to merge (<<: *name); it is
	// not read otherwise.
	Templates yaml.Node  `yaml:"templates"`
	Checks    []rawCheck `yaml:"checks"`
}

type rawCheck struct {
	Name    text       `yaml:"name"`
	Path    text       `yaml:"path"`
	URL     text       `yaml:"url"`
	Method  text       `yaml:"method"`
	Headers orderedMap `yaml:"headers"`
	Body    text       `yaml:"body"`
	Tags    textList   `yaml:"tags"`
	Expect  rawExpect  `yaml:"expect"`
}

type rawExpect struct {
	Status          textList   `yaml:"status"`
	BodyContains    textList   `yaml:"body_contains"`
	BodyNotContains textList   `yaml:"body_not_contains"`
	BodyRegex       text       `yaml:"body_regex"`
	Header          orderedMap `yaml:"header"`
	JSON            orderedMap `yaml:"json"`
	MaxLatency      text       `yaml:"max_latency"`
	FollowRedirects *bool      `yaml:"follow_redirects"`
	RedirectTo      text       `yaml:"redirect_to"`
}

// text is a scalar with its line. A YAML null leaves it unset.
type text struct {
	Value string
	Line  int
	Set   bool
}

func (t *text) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &Error{Line: n.Line, Msg: fmt.Sprintf("wrong type: expected a single value, got %s", kindName(n))}
	}
	t.Line = n.Line
	if n.Tag == "!!null" {
		return nil
	}
	t.Value, t.Set = n.Value, true
	return nil
}

// textList is a list of scalars; a single scalar is a list of one.
type textList struct {
	Items []text
	Line  int
	Set   bool
}

func (l *textList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	l.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		var t text
		if err := t.UnmarshalYAML(n); err != nil {
			return err
		}
		if t.Set {
			l.Items, l.Set = []text{t}, true
		}
		return nil
	case yaml.SequenceNode:
		l.Set = true
		for _, item := range n.Content {
			var t text
			if err := t.UnmarshalYAML(item); err != nil {
				return err
			}
			l.Items = append(l.Items, t)
		}
		return nil
	}
	return &Error{Line: n.Line, Msg: fmt.Sprintf("wrong type: expected a value or a list of values, got %s", kindName(n))}
}

// orderedMap is a mapping kept in document order, values undecoded.
type orderedMap struct {
	Entries []entry
	Line    int
}

type entry struct {
	Key   string
	Line  int
	Value *yaml.Node
}

func (m *orderedMap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	m.Line = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &Error{Line: n.Line, Msg: fmt.Sprintf("wrong type: expected a mapping (key: value), got %s", kindName(n))}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return &Error{Line: k.Line, Msg: "wrong type: a key must be a single value"}
		}
		m.Entries = append(m.Entries, entry{Key: k.Value, Line: k.Line, Value: v})
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}
