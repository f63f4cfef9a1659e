// Package tagfile reads and edits a charts-repo tag file: a small YAML map
// such as
//
//	image_tag: v1796
//	automatic_deploys_enabled: true
//	promote_deployment: true
//
// An edit changes the bytes of the two values Slipway owns (the tag and the
// promote flag) and nothing else: comments, key order, quoting, blank lines,
// other keys, CRLF line ends and a missing final newline all survive. The
// YAML library locates the values; the edit splices bytes at those places and
// then re-parses the result to prove that only the intended values changed.
package tagfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"

	yaml11 "go.yaml.in/yaml/v2"
	yaml "go.yaml.in/yaml/v3"
)

// ErrMalformed is wrapped by every error about a file that is not a valid
// tag file (bad YAML, not a map, duplicate or non-scalar keys).
var ErrMalformed = errors.New("malformed tag file")

// ErrCannotEdit is wrapped when a valid file cannot be edited without
// touching bytes outside the values (e.g. a tag written as a block scalar).
var ErrCannotEdit = errors.New("cannot edit tag file in place")

// Keys names the keys of a tag file; every name is configurable.
type Keys struct {
	Tag        string // image_tag
	Promote    string // promote_deployment
	AutoDeploy string // automatic_deploys_enabled
}

// DefaultKeys are GOV.UK's key names.
var DefaultKeys = Keys{Tag: "image_tag", Promote: "promote_deployment", AutoDeploy: "automatic_deploys_enabled"}

// File is a parsed tag file.
type File struct {
	src   []byte
	keys  Keys
	lines []int      // byte offset where each line starts (index 0 = line 1)
	root  *yaml.Node // the mapping; nil for an empty document
}

// Parse parses src as a tag file.
func Parse(src []byte, keys Keys) (*File, error) {
	if keys.Tag == "" || keys.Promote == "" {
		return nil, fmt.Errorf("tag file keys: tag and promote key names are required")
	}
	f := &File{src: src, keys: keys, lines: lineStarts(src)}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return f, nil // empty file or comments only
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: more than one YAML document", ErrMalformed)
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.MappingNode:
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null" && root.Value == "":
		return f, nil // "---" alone
	default:
		return nil, fmt.Errorf("%w: line %d: top level is not a map of keys", ErrMalformed, root.Line)
	}
	f.root = root
	seen := map[string]int{}
	for i := 0; i < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if prev, dup := seen[k.Value]; dup && (k.Value == keys.Tag || k.Value == keys.Promote || k.Value == keys.AutoDeploy) {
			return nil, fmt.Errorf("%w: line %d: key %q repeats the one on line %d", ErrMalformed, k.Line, k.Value, prev)
		}
		seen[k.Value] = k.Line
	}
	if v := f.value(keys.Tag); v != nil && v.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("%w: line %d: %s is not a plain value", ErrMalformed, v.Line, keys.Tag)
	}
	for _, k := range []string{keys.Promote, keys.AutoDeploy} {
		if k == "" {
			continue
		}
		if _, err := f.flag(k); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// value returns the value node of key, or nil.
func (f *File) value(key string) *yaml.Node {
	if f.root == nil {
		return nil
	}
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		if k := f.root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return f.root.Content[i+1]
		}
	}
	return nil
}

// Tag returns the image tag and whether the file has one.
func (f *File) Tag() (string, bool) {
	v := f.value(f.keys.Tag)
	if v == nil || v.Tag == "!!null" {
		return "", false
	}
	return v.Value, true
}

// Promote reports the promote flag; a missing flag is false.
func (f *File) Promote() bool { b, _ := f.flag(f.keys.Promote); return b }

// AutoDeploy reports the automatic-deploys flag; a missing flag is false.
func (f *File) AutoDeploy() bool { b, _ := f.flag(f.keys.AutoDeploy); return b }

func (f *File) flag(key string) (bool, error) {
	v := f.value(key)
	if v == nil || v.Tag == "!!null" {
		return false, nil
	}
	if v.Kind == yaml.ScalarNode {
		var b bool
		if v.Tag == "!!bool" && v.Decode(&b) == nil {
			return b, nil
		}
		switch v.Value { // a quoted "true" is read as meant
		case "true", "True", "TRUE":
			return true, nil
		case "false", "False", "FALSE":
			return false, nil
		}
	}
	return false, fmt.Errorf("%w: line %d: %s must be true or false, not %q", ErrMalformed, v.Line, key, v.Value)
}

// New returns the content of a new tag file holding tag and promote.
func New(tag string, promote bool, keys Keys) []byte {
	return []byte(fmt.Sprintf("%s: %s\n%s: %t\n", keys.Tag, scalar(tag), keys.Promote, promote))
}

// Set returns the file's bytes with the tag and the promote flag set. Only
// those two values change; a missing key is added next to the tag.
func (f *File) Set(tag string, promote bool) ([]byte, error) {
	tagText := scalar(tag)
	flagText := fmt.Sprint(promote)
	var edits []edit
	tagNode, flagNode := f.value(f.keys.Tag), f.value(f.keys.Promote)

	tagEnd := -1 // where the tag's value ends, for inserting the flag after it
	if tagNode != nil {
		s, e, quote, err := f.scalarSpan(tagNode)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.keys.Tag, err)
		}
		repl := tagText
		switch quote {
		case '\'':
			repl = "'" + tag + "'"
		case '"':
			repl = `"` + tag + `"`
		}
		edits = append(edits, edit{s, e, f.afterColon(s, e, repl)})
		tagEnd = e
	}
	if flagNode != nil {
		s, e, _, err := f.scalarSpan(flagNode)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.keys.Promote, err)
		}
		edits = append(edits, edit{s, e, f.afterColon(s, e, flagText)})
	}

	tagPair := f.keys.Tag + ": " + tagText
	flagPair := f.keys.Promote + ": " + flagText
	var missing []string
	if tagNode == nil {
		missing = append(missing, tagPair)
	}
	if flagNode == nil {
		missing = append(missing, flagPair)
	}
	if len(missing) > 0 {
		ins, err := f.insertion(missing, tagNode, tagEnd)
		if err != nil {
			return nil, err
		}
		edits = append(edits, ins)
	}

	out := apply(f.src, edits)
	if err := f.verify(out, tag, promote); err != nil {
		return nil, err
	}
	return out, nil
}

// afterColon keeps "key:" with an empty value valid once filled: "key: v".
func (f *File) afterColon(s, e int, text string) string {
	if s == e && s > 0 && f.src[s-1] == ':' {
		return " " + text
	}
	return text
}

// insertion places the missing key/value pairs: after the tag's value when
// the tag exists (the flag is the only one missing then), else at the start
// of the map, or at the end of an empty document.
func (f *File) insertion(pairs []string, tagNode *yaml.Node, tagEnd int) (edit, error) {
	eol := f.eol()
	switch {
	case f.root == nil:
		text := ""
		if len(f.src) > 0 && !endsWithBreak(f.src) {
			text = eol
		}
		for _, p := range pairs {
			text += p + eol
		}
		return edit{len(f.src), len(f.src), text}, nil
	case f.root.Style&yaml.FlowStyle != 0:
		if tagNode != nil {
			return edit{tagEnd, tagEnd, ", " + join(pairs, ", ")}, nil
		}
		open := f.offset(f.root.Line, f.root.Column)
		if open < 0 || open >= len(f.src) || f.src[open] != '{' {
			return edit{}, fmt.Errorf("%w: cannot find the start of the flow map", ErrCannotEdit)
		}
		sep := ", "
		if len(f.root.Content) == 0 {
			sep = ""
		}
		return edit{open + 1, open + 1, join(pairs, ", ") + sep}, nil
	case tagNode != nil:
		// Block map: the flag goes on a new line under the tag, indented like it.
		key := f.keyNode(f.keys.Tag)
		lineEnd := f.lineEnd(tagEnd)
		indent := f.indent(key)
		return edit{lineEnd, lineEnd, eol + indent + join(pairs, eol+indent)}, nil
	default:
		if len(f.root.Content) == 0 {
			return edit{}, fmt.Errorf("%w: empty map", ErrCannotEdit)
		}
		first := f.root.Content[0]
		start := f.offset(first.Line, 1)
		indent := f.indent(first)
		if start < 0 || f.offset(first.Line, first.Column) != start+len(indent) {
			return edit{}, fmt.Errorf("%w: the first key does not start its line", ErrCannotEdit)
		}
		text := ""
		for _, p := range pairs {
			text += indent + p + eol
		}
		return edit{start, start, text}, nil
	}
}

func join(parts []string, sep string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += sep
		}
		out += p
	}
	return out
}

// verify re-parses out and checks that the tag and flag hold the new values
// and that every other key decodes exactly as before.
func (f *File) verify(out []byte, tag string, promote bool) error {
	g, err := Parse(out, f.keys)
	if err != nil {
		return fmt.Errorf("%w: the edit would not parse: %v", ErrCannotEdit, err)
	}
	if got, ok := g.Tag(); !ok || got != tag {
		return fmt.Errorf("%w: the edit would read back %s as %q", ErrCannotEdit, f.keys.Tag, got)
	}
	if g.Promote() != promote {
		return fmt.Errorf("%w: the edit would read back %s wrong", ErrCannotEdit, f.keys.Promote)
	}
	if !reflect.DeepEqual(f.others(), g.others()) {
		return fmt.Errorf("%w: the edit would change other keys", ErrCannotEdit)
	}
	return nil
}

// others decodes every key but the tag and the flag, in file order.
func (f *File) others() [][2]any {
	var m [][2]any
	if f.root == nil {
		return m
	}
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		k, v := f.root.Content[i], f.root.Content[i+1]
		if k.Kind == yaml.ScalarNode && (k.Value == f.keys.Tag || k.Value == f.keys.Promote) {
			continue
		}
		var kv, vv any
		_ = k.Decode(&kv)
		_ = v.Decode(&vv)
		m = append(m, [2]any{kv, vv})
	}
	return m
}

func (f *File) keyNode(key string) *yaml.Node {
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		if k := f.root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k
		}
	}
	return nil
}

// scalar renders tag as a YAML scalar: plain where both YAML 1.2 and YAML
// 1.1 read it back as the same string, double-quoted otherwise. Helm reads
// values files with a YAML 1.1 parser, where yes, no, on, off, y and n are
// booleans: a tag like 1.10, yes or 1e3 must stay a string for every reader.
func scalar(tag string) string {
	doc := []byte("k: " + tag)
	var m12 map[string]any
	if err := yaml.Unmarshal(doc, &m12); err != nil || m12["k"] != any(tag) {
		return `"` + tag + `"`
	}
	var m11 map[string]any
	if err := yaml11.Unmarshal(doc, &m11); err != nil || m11["k"] != any(tag) {
		return `"` + tag + `"`
	}
	return tag
}
