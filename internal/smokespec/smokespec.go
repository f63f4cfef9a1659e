// Package smokespec parses a smoke-test spec: a YAML list of HTTP checks and
// what each response must look like. Every error names the spec file and
// line ("checks.yaml:12: body_regex: ..."); ${VAR} references are filled from
// a lookup (the environment and --env), and an unset variable is an error.
package smokespec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Spec is a parsed spec file.
type Spec struct {
	File   string
	Checks []Check
}

// Check is one HTTP request and what its response must look like.
type Check struct {
	Name    string
	Line    int // where the check starts in the spec
	Method  string
	URL     string // absolute
	Headers []Header
	Body    string
	Tags    []string // without the leading "@"
	Expect  Expect
}

// Header is one request header.
type Header struct {
	Name, Value string
}

// Expect lists what a response must satisfy. Zero fields are not checked,
// except Status, which is never empty after Parse.
type Expect struct {
	Status          []StatusRange
	BodyContains    []string
	BodyNotContains []string
	BodyRegex       *regexp.Regexp
	Header          []HeaderMatch
	JSON            []JSONMatch
	MaxLatency      time.Duration
	FollowRedirects bool
	RedirectTo      string // absolute; empty when not checked
}

// StatusRange is an inclusive range of status codes: 200-200, 200-299.
type StatusRange struct {
	Min, Max int
}

func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return fmt.Sprintf("%dxx", r.Min/100)
}

// HeaderMatch is a response header that must match a regex.
type HeaderMatch struct {
	Name  string
	Regex *regexp.Regexp
}

// JSONMatch is a gjson path into the response body and the value expected there.
type JSONMatch struct {
	Path string
	Want any // JSON-shaped: string, float64, bool, nil, []any, map[string]any
}

// Options are what a spec is parsed against.
type Options struct {
	// BaseURL is prefixed to each check's path.
	BaseURL string
	// Lookup resolves ${VAR}; nil means nothing is set.
	Lookup Lookup
}

// Error is a spec error at a line (0 when the line is not known).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads and parses the spec file at path.
func Load(path string, opts Options) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse parses a spec. file is used in error messages only.
func Parse(file string, data []byte, opts Options) (*Spec, error) {
	spec, err := parse(data, opts)
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.File = file
			return nil, se
		}
		return nil, &Error{File: file, Msg: err.Error()}
	}
	spec.File = file
	return spec, nil
}

var yamlLineMsg = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func parse(data []byte, opts Options) (*Spec, error) {
	if opts.Lookup == nil {
		opts.Lookup = func(string) (string, bool) { return "", false }
	}
	// A first pass for the syntax and the line of every check.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{Line: 1, Msg: "empty spec: expected a mapping with a checks: list"}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{Line: doc.Line, Msg: fmt.Sprintf("wrong type: expected a mapping with a checks: list, got %s", kindName(doc))}
	}
	var raw rawSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return nil, typeError(te.Errors[0], doc)
		}
		return nil, yamlError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, &Error{Line: next.Line, Msg: "more than one YAML document: put every check in one checks: list"}
	}
	checkLines := sequenceLines(doc, "checks")
	if len(raw.Checks) == 0 {
		return nil, &Error{Line: doc.Line, Msg: "no checks: the spec needs a checks: list with at least one check"}
	}
	b := builder{opts: opts, names: map[string]int{}}
	spec := &Spec{}
	for i, rc := range raw.Checks {
		line := doc.Line
		if i < len(checkLines) {
			line = checkLines[i]
		}
		c, err := b.check(rc, line)
		if err != nil {
			return nil, err
		}
		spec.Checks = append(spec.Checks, c)
	}
	return spec, nil
}

// sequenceLines returns the line of each item of the sequence under key.
func sequenceLines(m *yaml.Node, key string) []int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, item := range m.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

func yamlError(err error) error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	msg := err.Error()
	if m := yamlLineMsg.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var (
	unknownField = regexp.MustCompile(`^field (\S+) not found in type smokespec\.raw(\w+)$`)
	cannotDecode = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.+)$")
	yamlTagNames = map[string]string{"str": "a string", "int": "a number", "float": "a number", "bool": "true/false",
		"seq": "a list", "map": "a mapping", "null": "nothing", "timestamp": "a date"}
	goTypeNames = map[string]string{"bool": "true or false", "*bool": "true or false", "[]smokespec.rawCheck": "a list of checks",
		"smokespec.rawSpec": "a mapping with a checks: list", "smokespec.rawCheck": "a mapping (one check)", "smokespec.rawExpect": "a mapping of expectations"}
	knownKeys = map[string]string{
		"Spec":   "checks, templates",
		"Check":  "name, path, url, method, headers, body, tags, expect",
		"Expect": "status, body_contains, body_not_contains, body_regex, header, json, max_latency, follow_redirects, redirect_to",
	}
)

// typeError turns one of yaml's decode messages into a spec error.
func typeError(msg string, doc *yaml.Node) error {
	m := yamlLineMsg.FindStringSubmatch(msg)
	if m == nil {
		return &Error{Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	detail := m[2]
	if u := unknownField.FindStringSubmatch(detail); u != nil {
		return &Error{Line: line, Msg: fmt.Sprintf("unknown key %q (known keys here: %s)", u[1], knownKeys[u[2]])}
	}
	if c := cannotDecode.FindStringSubmatch(detail); c != nil {
		got := yamlTagNames[c[1]]
		if got == "" {
			got = c[1]
		}
		if c[2] != "" {
			got += " (" + c[2] + ")"
		}
		want := goTypeNames[c[3]]
		if want == "" {
			want = c[3]
		}
		msg := fmt.Sprintf("wrong type: expected %s, got %s", want, got)
		if key := keyAt(doc, line); key != "" {
			msg = key + ": " + msg
		}
		return &Error{Line: line, Msg: msg}
	}
	return &Error{Line: line, Msg: detail}
}

// keyAt finds the innermost mapping key whose value starts on line.
func keyAt(n *yaml.Node, line int) string {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := keyAt(n.Content[i+1], line); k != "" {
				return k
			}
			if n.Content[i+1].Line == line {
				return n.Content[i].Value
			}
		}
		return ""
	}
	for _, c := range n.Content {
		if k := keyAt(c, line); k != "" {
			return k
		}
	}
	return ""
}

// builder turns raw checks into Checks: ${VAR} substitution, defaults and
// validation, each error at its line.
type builder struct {
	opts  Options
	names map[string]int // name -> line of the check that has it
}

func (b *builder) expand(field string, t text) (string, error) {
	v, err := expand(t.Value, b.opts.Lookup)
	if err != nil {
		return "", &Error{Line: t.Line, Msg: field + ": " + err.Error()}
	}
	return v, nil
}

func (b *builder) expandList(field string, l textList) ([]string, error) {
	var out []string
	for _, t := range l.Items {
		v, err := b.expand(field, t)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (b *builder) check(rc rawCheck, line int) (Check, error) {
	c := Check{Line: line, Method: http.MethodGet}
	var err error
	errAt := func(l int, format string, args ...any) error {
		if l == 0 {
			l = line
		}
		return &Error{Line: l, Msg: fmt.Sprintf(format, args...)}
	}
	if rc.Method.Set {
		m, err := b.expand("method", rc.Method)
		if err != nil {
			return c, err
		}
		c.Method = strings.ToUpper(strings.TrimSpace(m))
		if !isToken(c.Method) {
			return c, errAt(rc.Method.Line, "method: %q is not an HTTP method", m)
		}
	}
	switch {
	case rc.URL.Set && rc.Path.Set:
		return c, errAt(rc.URL.Line, "a check has either url or path, not both")
	case rc.URL.Set:
		u, err := b.expand("url", rc.URL)
		if err != nil {
			return c, err
		}
		if err := checkHTTPURL(u); err != nil {
			return c, errAt(rc.URL.Line, "url: %v", err)
		}
		c.URL = u
	case rc.Path.Set:
		p, err := b.expand("path", rc.Path)
		if err != nil {
			return c, err
		}
		if b.opts.BaseURL == "" {
			return c, errAt(rc.Path.Line, "path %q needs --base-url (or give the check a full url)", p)
		}
		c.URL = strings.TrimRight(b.opts.BaseURL, "/") + "/" + strings.TrimLeft(p, "/")
		if err := checkHTTPURL(c.URL); err != nil {
			return c, errAt(rc.Path.Line, "path: %v", err)
		}
	default:
		return c, errAt(line, "missing url: a check needs a url or a path")
	}
	if rc.Name.Set {
		if c.Name, err = b.expand("name", rc.Name); err != nil {
			return c, err
		}
		c.Name = strings.TrimSpace(c.Name)
	}
	if c.Name == "" {
		target := rc.Path.Value
		if target == "" {
			target = rc.URL.Value
		}
		c.Name = c.Method + " " + target
	}
	if first, dup := b.names[c.Name]; dup {
		return c, errAt(rc.Name.Line, "name %q is already used by the check at line %d", c.Name, first)
	}
	b.names[c.Name] = line
	for _, e := range rc.Headers.Entries {
		v, err := b.headerValue("headers", e)
		if err != nil {
			return c, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return c, errAt(e.Line, "headers.%s: a header value cannot contain a line break", e.Key)
		}
		c.Headers = append(c.Headers, Header{Name: e.Key, Value: v})
	}
	if c.Body, err = b.expand("body", rc.Body); err != nil {
		return c, err
	}
	tags, err := b.expandList("tags", rc.Tags)
	if err != nil {
		return c, err
	}
	for i, t := range tags {
		t = normTag(t)
		if t == "" || strings.ContainsAny(t, " \t,") {
			return c, errAt(rc.Tags.Items[i].Line, "tags: %q is not a tag (one word, e.g. @app-frontend)", tags[i])
		}
		c.Tags = append(c.Tags, t)
	}
	c.Expect, err = b.expect(rc.Expect, c.URL, errAt)
	return c, err
}

func (b *builder) expect(re rawExpect, checkURL string, errAt func(int, string, ...any) error) (Expect, error) {
	var e Expect
	var err error
	if re.FollowRedirects != nil {
		e.FollowRedirects = *re.FollowRedirects
	}
	statuses, err := b.expandList("status", re.Status)
	if err != nil {
		return e, err
	}
	for i, s := range statuses {
		r, ok := parseStatus(s)
		if !ok {
			return e, errAt(re.Status.Items[i].Line, "status: %q is not a status (a code like 200, or a class like 2xx)", s)
		}
		e.Status = append(e.Status, r)
	}
	if e.BodyContains, err = b.expandList("body_contains", re.BodyContains); err != nil {
		return e, err
	}
	if e.BodyNotContains, err = b.expandList("body_not_contains", re.BodyNotContains); err != nil {
		return e, err
	}
	if re.BodyRegex.Set {
		s, err := b.expand("body_regex", re.BodyRegex)
		if err != nil {
			return e, err
		}
		if e.BodyRegex, err = regexp.Compile(s); err != nil {
			return e, errAt(re.BodyRegex.Line, "body_regex: %v", err)
		}
	}
	for _, h := range re.Header.Entries {
		s, err := b.headerValue("header", h)
		if err != nil {
			return e, err
		}
		rx, err := regexp.Compile(s)
		if err != nil {
			return e, errAt(h.Value.Line, "header.%s: %v", h.Key, err)
		}
		e.Header = append(e.Header, HeaderMatch{Name: h.Key, Regex: rx})
	}
	for _, j := range re.JSON.Entries {
		if j.Key == "" || strings.HasPrefix(j.Key, "$") {
			return e, errAt(j.Line, "json: path %q: write a gjson path such as data.items.0.name (no leading $)", j.Key)
		}
		want, err := b.jsonValue(j)
		if err != nil {
			return e, err
		}
		e.JSON = append(e.JSON, JSONMatch{Path: j.Key, Want: want})
	}
	if re.MaxLatency.Set {
		s, err := b.expand("max_latency", re.MaxLatency)
		if err != nil {
			return e, err
		}
		if e.MaxLatency, err = time.ParseDuration(s); err != nil || e.MaxLatency <= 0 {
			return e, errAt(re.MaxLatency.Line, "max_latency: %q is not a positive duration such as 500ms or 2s", s)
		}
	}
	if re.RedirectTo.Set {
		s, err := b.expand("redirect_to", re.RedirectTo)
		if err != nil {
			return e, err
		}
		base, _ := url.Parse(checkURL)
		ref, err := url.Parse(s)
		if err != nil || s == "" {
			return e, errAt(re.RedirectTo.Line, "redirect_to: %q is not a URL or path", s)
		}
		e.RedirectTo = base.ResolveReference(ref).String()
	}
	if len(e.Status) == 0 {
		if e.RedirectTo != "" && !e.FollowRedirects {
			e.Status = []StatusRange{{300, 399}}
		} else {
			e.Status = []StatusRange{{200, 299}}
		}
	}
	return e, nil
}

// headerValue is the single value of a header-name key (under headers: or
// expect.header:), with its ${VAR}s filled.
func (b *builder) headerValue(field string, h entry) (string, error) {
	var t text
	if err := t.UnmarshalYAML(h.Value); err != nil {
		return "", err
	}
	if !isToken(h.Key) {
		return "", &Error{Line: h.Line, Msg: fmt.Sprintf("%s: %q is not a valid header name", field, h.Key)}
	}
	return b.expand(field+"."+h.Key, t)
}

// jsonValue decodes an expected JSON value, filling ${VAR} in its strings.
func (b *builder) jsonValue(j entry) (any, error) {
	var v any
	if err := j.Value.Decode(&v); err != nil {
		return nil, &Error{Line: j.Line, Msg: fmt.Sprintf("json.%s: %v", j.Key, err)}
	}
	v, err := b.expandAny(v, j)
	if err != nil {
		return nil, err
	}
	// round-trip through JSON so numbers compare as float64 like the body's
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Line: j.Line, Msg: fmt.Sprintf("json.%s: expected value is not JSON: %v", j.Key, err)}
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, &Error{Line: j.Line, Msg: fmt.Sprintf("json.%s: %v", j.Key, err)}
	}
	return out, nil
}

func (b *builder) expandAny(v any, j entry) (any, error) {
	switch x := v.(type) {
	case string:
		return b.expand("json."+j.Key, text{Value: x, Line: j.Line})
	case []any:
		for i := range x {
			var err error
			if x[i], err = b.expandAny(x[i], j); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range x {
			var err error
			if x[k], err = b.expandAny(x[k], j); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

func parseStatus(s string) (StatusRange, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 3 && (s[1:] == "xx" || s[1:] == "XX") && s[0] >= '1' && s[0] <= '5' {
		lo := int(s[0]-'0') * 100
		return StatusRange{lo, lo + 99}, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return StatusRange{}, false
	}
	return StatusRange{n, n}, true
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// isToken reports whether s is an HTTP token (method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func normTag(t string) string { return strings.TrimPrefix(strings.TrimSpace(t), "@") }

// Select returns the checks that carry any of tags (all checks when tags is
// empty) and none of skip. Tags match with or without their leading "@".
func Select(checks []Check, tags, skip []string) []Check {
	has := func(c Check, list []string) bool {
		for _, want := range list {
			for _, t := range c.Tags {
				if t == normTag(want) {
					return true
				}
			}
		}
		return false
	}
	var out []Check
	for _, c := range checks {
		if len(tags) > 0 && !has(c, tags) {
			continue
		}
		if has(c, skip) {
			continue
		}
		out = append(out, c)
	}
	return out
}
