package tagfile

import (
	"bytes"
	"fmt"
	"sort"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// apply applies non-overlapping edits to a copy of src.
func apply(src []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	out.Grow(len(src) + 64)
	pos := 0
	for _, e := range edits {
		out.Write(src[pos:e.start])
		out.WriteString(e.text)
		pos = e.end
	}
	out.Write(src[pos:])
	return out.Bytes()
}

// breakLen returns the length of the YAML line break at src[i], or 0. YAML
// (and so the parser's line numbers) knows CRLF, CR, LF, NEL, LS and PS.
func breakLen(src []byte, i int) int {
	switch {
	case i >= len(src):
		return 0
	case src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n':
		return 2
	case src[i] == '\r' || src[i] == '\n':
		return 1
	case bytes.HasPrefix(src[i:], []byte("\u0085")):
		return 2
	case bytes.HasPrefix(src[i:], []byte("\u2028")), bytes.HasPrefix(src[i:], []byte("\u2029")):
		return 3
	}
	return 0
}

// lineStarts returns the byte offset of each line's start. A leading BOM is
// not part of line 1's columns.
func lineStarts(src []byte) []int {
	start := 0
	if bytes.HasPrefix(src, []byte("\ufeff")) {
		start = 3
	}
	starts := []int{start}
	for i := start; i < len(src); {
		if n := breakLen(src, i); n > 0 {
			i += n
			starts = append(starts, i)
			continue
		}
		i++
	}
	return starts
}

// offset converts the parser's 1-based line and column (counted in
// characters) into a byte offset, or -1.
func (f *File) offset(line, col int) int {
	if line < 1 || line > len(f.lines) {
		return -1
	}
	off := f.lines[line-1]
	for c := 1; c < col; c++ {
		if off >= len(f.src) || breakLen(f.src, off) > 0 {
			return -1
		}
		_, size := utf8.DecodeRune(f.src[off:])
		off += size
	}
	return off
}

// lineEnd returns the offset of the line break at or after off (or EOF).
func (f *File) lineEnd(off int) int {
	for off < len(f.src) && breakLen(f.src, off) == 0 {
		off++
	}
	return off
}

// indent returns the text before key on its line.
func (f *File) indent(key *yaml.Node) string {
	start := f.offset(key.Line, 1)
	at := f.offset(key.Line, key.Column)
	if start < 0 || at < start {
		return ""
	}
	ind := f.src[start:at]
	if len(bytes.Trim(ind, " \t")) != 0 {
		return string(bytes.Repeat([]byte(" "), key.Column-1))
	}
	return string(ind)
}

// eol is the file's own line ending, for inserted lines.
func (f *File) eol() string {
	if i := bytes.IndexAny(f.src, "\r\n"); i >= 0 {
		if n := breakLen(f.src, i); n == 2 {
			return "\r\n"
		}
		return string(f.src[i])
	}
	return "\n"
}

func endsWithBreak(src []byte) bool {
	return bytes.HasSuffix(src, []byte("\n")) || bytes.HasSuffix(src, []byte("\r"))
}

// scalarSpan finds the bytes of a scalar value in the source: its start and
// end offsets, and its quote character (0 for plain). It refuses what it
// cannot replace exactly: block scalars, and scalars spanning lines.
func (f *File) scalarSpan(n *yaml.Node) (start, end int, quote byte, err error) {
	if n.Kind != yaml.ScalarNode {
		return 0, 0, 0, fmt.Errorf("%w: line %d: not a plain value", ErrCannotEdit, n.Line)
	}
	p := f.offset(n.Line, n.Column)
	if p < 0 {
		return 0, 0, 0, fmt.Errorf("%w: line %d: value not found", ErrCannotEdit, n.Line)
	}
	src := f.src
	// Skip node properties (an &anchor or a !tag) before the value itself.
	for p < len(src) && (src[p] == '&' || src[p] == '!') {
		for p < len(src) && src[p] != ' ' && src[p] != '\t' && breakLen(src, p) == 0 {
			p++
		}
		for p < len(src) && (src[p] == ' ' || src[p] == '\t') {
			p++
		}
		if breakLen(src, p) > 0 {
			return 0, 0, 0, fmt.Errorf("%w: line %d: value on the line after its tag", ErrCannotEdit, n.Line)
		}
	}
	flow := f.root != nil && f.root.Style&yaml.FlowStyle != 0
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, 0, 0, fmt.Errorf("%w: line %d: block scalar", ErrCannotEdit, n.Line)
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if p >= len(src) || src[p] != '"' {
			return 0, 0, 0, fmt.Errorf("%w: line %d: quote not found", ErrCannotEdit, n.Line)
		}
		for i := p + 1; i < len(src); i++ {
			switch {
			case breakLen(src, i) > 0:
				return 0, 0, 0, fmt.Errorf("%w: line %d: quoted value spans lines", ErrCannotEdit, n.Line)
			case src[i] == '\\':
				i++
			case src[i] == '"':
				return p, i + 1, '"', nil
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		if p >= len(src) || src[p] != '\'' {
			return 0, 0, 0, fmt.Errorf("%w: line %d: quote not found", ErrCannotEdit, n.Line)
		}
		for i := p + 1; i < len(src); i++ {
			switch {
			case breakLen(src, i) > 0:
				return 0, 0, 0, fmt.Errorf("%w: line %d: quoted value spans lines", ErrCannotEdit, n.Line)
			case src[i] == '\'' && i+1 < len(src) && src[i+1] == '\'':
				i++
			case src[i] == '\'':
				return p, i + 1, '\'', nil
			}
		}
	default:
		e := p
		for e < len(src) && breakLen(src, e) == 0 {
			c := src[e]
			if c == '#' && e > p && (src[e-1] == ' ' || src[e-1] == '\t') {
				break
			}
			if flow && (c == ',' || c == '}' || c == ']') {
				break
			}
			e++
		}
		for e > p && (src[e-1] == ' ' || src[e-1] == '\t') {
			e--
		}
		if string(src[p:e]) != n.Value {
			return 0, 0, 0, fmt.Errorf("%w: line %d: value spans lines or is not where expected", ErrCannotEdit, n.Line)
		}
		return p, e, 0, nil
	}
	return 0, 0, 0, fmt.Errorf("%w: line %d: unterminated quote", ErrCannotEdit, n.Line)
}
