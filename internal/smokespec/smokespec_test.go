package smokespec

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lookupFrom(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var testOpts = Options{BaseURL: "https://www.example.test/base/", Lookup: lookupFrom(map[string]string{
	"ENV": "staging", "TOKEN": "s3cret", "EMPTY": "",
})}

const fullSpec = `# every field
checks:
  - name: home ${ENV}
    path: /
    tags: [app-frontend, "@smoke"]
    expect:
      status: 200
      body_contains: ["GOV.UK", "${ENV}"]
      body_not_contains: Error
      body_regex: '<title>.*</title>'
      header:
        Content-Type: ^text/html
      max_latency: 2s
  - url: https://api.example.test/v1/health?x=$${literal}
    method: post
    headers:
      Authorization: Bearer ${TOKEN}
      X-Empty: "${EMPTY}"
    body: '{"ping": true}'
    expect:
      status: [200, 3xx]
      json:
        status: ok
        db.connected: true
        items.#: 3
        env: ${ENV}
  - name: old path
    path: old
    expect:
      redirect_to: /new
  - name: followed
    path: /start
    expect:
      follow_redirects: true
      redirect_to: https://elsewhere.test/end
`

func TestParseFullSpec(t *testing.T) {
	spec, err := Parse("checks.yaml", []byte(fullSpec), testOpts)
	require.NoError(t, err)
	require.Len(t, spec.Checks, 4)

	home := spec.Checks[0]
	assert.Equal(t, "home staging", home.Name)
	assert.Equal(t, 3, home.Line)
	assert.Equal(t, "GET", home.Method)
	assert.Equal(t, "https://www.example.test/base/", home.URL)
	assert.Equal(t, []string{"app-frontend", "smoke"}, home.Tags)
	assert.Equal(t, []StatusRange{{200, 200}}, home.Expect.Status)
	assert.Equal(t, []string{"GOV.UK", "staging"}, home.Expect.BodyContains)
	assert.Equal(t, []string{"Error"}, home.Expect.BodyNotContains)
	assert.Equal(t, "<title>.*</title>", home.Expect.BodyRegex.String())
	require.Len(t, home.Expect.Header, 1)
	assert.Equal(t, "Content-Type", home.Expect.Header[0].Name)
	assert.Equal(t, 2*time.Second, home.Expect.MaxLatency)

	api := spec.Checks[1]
	assert.Equal(t, "POST https://api.example.test/v1/health?x=$${literal}", api.Name, "default name is method and target as written")
	assert.Equal(t, "https://api.example.test/v1/health?x=${literal}", api.URL)
	assert.Equal(t, []Header{{"Authorization", "Bearer s3cret"}, {"X-Empty", ""}}, api.Headers)
	assert.Equal(t, `{"ping": true}`, api.Body)
	assert.Equal(t, []StatusRange{{200, 200}, {300, 399}}, api.Expect.Status)
	assert.Equal(t, []JSONMatch{{"status", "ok"}, {"db.connected", true}, {"items.#", float64(3)}, {"env", "staging"}}, api.Expect.JSON)

	old := spec.Checks[2]
	assert.Equal(t, "https://www.example.test/base/old", old.URL)
	assert.Equal(t, "https://www.example.test/new", old.Expect.RedirectTo)
	assert.Equal(t, []StatusRange{{300, 399}}, old.Expect.Status, "redirect_to without following expects a 3xx")
	assert.False(t, old.Expect.FollowRedirects)

	followed := spec.Checks[3]
	assert.True(t, followed.Expect.FollowRedirects)
	assert.Equal(t, []StatusRange{{200, 299}}, followed.Expect.Status)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		spec string
		line int
		msg  string
	}{
		{"unknown key in check", "checks:\n  - name: a\n    path: /\n    methd: GET\n", 4, `unknown key "methd"`},
		{"unknown key in expect", "checks:\n  - path: /\n    expect:\n      stauts: 200\n", 4, `unknown key "stauts"`},
		{"unknown top-level key", "check:\n  - path: /\n", 1, `unknown key "check"`},
		{"wrong type bool", "checks:\n  - path: /\n    expect:\n      follow_redirects: sometimes\n", 4, "follow_redirects: wrong type: expected true or false"},
		{"wrong type list for name", "checks:\n  - path: /\n    name: [a, b]\n", 3, "wrong type: expected a single value, got a list"},
		{"checks not a list", "checks: yes\n", 1, "wrong type: expected a list of checks"},
		{"headers not a mapping", "checks:\n  - path: /\n    headers: [a]\n", 3, "expected a mapping"},
		{"missing url", "checks:\n  - path: /\n  - name: nothing\n    method: GET\n", 3, "missing url"},
		{"url and path", "checks:\n  - path: /\n    url: http://x.test/\n", 3, "either url or path"},
		{"url not http", "checks:\n\n  - url: ftp://x.test/\n", 3, "want an http:// or https:// URL"},
		{"bad regex", "checks:\n  - path: /\n    expect:\n      body_regex: '(['\n", 4, "body_regex: error parsing regexp"},
		{"bad header regex", "checks:\n  - path: /\n    expect:\n      header:\n        Location: '*x'\n", 5, "header.Location: error parsing regexp"},
		{"unset variable", "checks:\n  - path: /\n    headers:\n      Authorization: Bearer ${NOPE}\n", 4, "headers.Authorization: variable ${NOPE} is not set"},
		{"unset variable in json", "checks:\n  - path: /\n    expect:\n      json:\n        a: ${NOPE}\n", 5, "variable ${NOPE} is not set"},
		{"unterminated variable", "checks:\n  - url: http://x.test/${ENV\n", 2, "unterminated variable reference"},
		{"bad status", "checks:\n  - path: /\n    expect:\n      status: [200, 2x]\n", 4, `status: "2x" is not a status`},
		{"status out of range", "checks:\n  - path: /\n    expect:\n      status: 600\n", 4, `"600" is not a status`},
		{"bad latency", "checks:\n  - path: /\n    expect:\n      max_latency: fast\n", 4, "max_latency"},
		{"bad method", "checks:\n  - path: /\n    method: GE T\n", 3, "is not an HTTP method"},
		{"duplicate name", "checks:\n  - name: a\n    path: /\n  - name: a\n    path: /x\n", 4, `name "a" is already used by the check at line 2`},
		{"dollar json path", "checks:\n  - path: /\n    expect:\n      json:\n        $.a: 1\n", 5, "no leading $"},
		{"bad tag", "checks:\n  - path: /\n    tags: ['a b']\n", 3, "is not a tag"},
		{"no checks", "checks: []\n", 1, "no checks"},
		{"empty file", "", 1, "empty spec"},
		{"not a mapping", "- path: /\n", 1, "expected a mapping with a checks: list"},
		{"syntax error", "checks:\n  - path: /\n    name: x: y\n", 3, "invalid YAML"},
		{"duplicate key", "checks:\n  - path: /\n    path: /x\n", 3, `mapping key "path" already defined at line 2`},
		{"two documents", "checks:\n  - path: /\n---\nchecks: []\n", 0, "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("checks.yaml", []byte(tt.spec), testOpts)
			require.Error(t, err)
			var se *Error
			require.True(t, errors.As(err, &se), "%T %v", err, err)
			if tt.line > 0 {
				assert.Equal(t, tt.line, se.Line, err.Error())
				assert.True(t, strings.HasPrefix(err.Error(), "checks.yaml:"+strconv.Itoa(tt.line)+": "), err.Error())
			}
			assert.Contains(t, err.Error(), tt.msg)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestTemplatesAndMergeKeys(t *testing.T) {
	spec, err := Parse("s.yaml", []byte(`templates:
  page: &page
    tags: [app-frontend]
    expect:
      status: 200
      header: {Content-Type: ^text/html}
checks:
  - <<: *page
    name: home
    path: /
  - <<: *page
    name: help
    path: /help
`), testOpts)
	require.NoError(t, err)
	require.Len(t, spec.Checks, 2)
	for _, c := range spec.Checks {
		assert.Equal(t, []string{"app-frontend"}, c.Tags)
		assert.Equal(t, []StatusRange{{200, 200}}, c.Expect.Status)
		require.Len(t, c.Expect.Header, 1)
	}
	assert.Equal(t, "https://www.example.test/base/help", spec.Checks[1].URL)
}

func TestPathNeedsBaseURL(t *testing.T) {
	_, err := Parse("s.yaml", []byte("checks:\n  - path: /x\n"), Options{})
	require.Error(t, err)
	assert.Equal(t, "s.yaml:2: path \"/x\" needs --base-url (or give the check a full url)", err.Error())
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "checks.yaml")
	require.NoError(t, os.WriteFile(p, []byte("checks:\n  - url: http://127.0.0.1/\n"), 0o644))
	spec, err := Load(p, Options{})
	require.NoError(t, err)
	assert.Equal(t, p, spec.File)
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"), Options{})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestExpand(t *testing.T) {
	look := lookupFrom(map[string]string{"A": "1", "B_2": "two", "E": ""})
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}-${B_2}", "1-two", ""},
		{"$A stays", "$A stays", ""},
		{"cost $5", "cost $5", ""},
		{"$${A}", "${A}", ""},
		{"x${E}y", "xy", ""},
		{"${MISSING}", "", "variable ${MISSING} is not set"},
		{"${1A}", "", "invalid variable name"},
		{"${}", "", "invalid variable name"},
		{"${A", "", "unterminated"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, look)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestSelect(t *testing.T) {
	spec, err := Parse("s.yaml", []byte(`checks:
  - {name: a, path: /a, tags: [app-frontend]}
  - {name: b, path: /b, tags: [app-frontend, not-production]}
  - {name: c, path: /c, tags: [app-publisher]}
  - {name: d, path: /d}
`), testOpts)
	require.NoError(t, err)
	names := func(cs []Check) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	tests := []struct {
		tags, skip []string
		want       []string
	}{
		{nil, nil, []string{"a", "b", "c", "d"}},
		{[]string{"@app-frontend"}, nil, []string{"a", "b"}},
		{[]string{"app-frontend"}, []string{"@not-production"}, []string{"a"}},
		{[]string{"@app-frontend", "@app-publisher"}, nil, []string{"a", "b", "c"}},
		{nil, []string{"@not-production"}, []string{"a", "c", "d"}},
		{[]string{"@app-nothing"}, nil, nil},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, names(Select(spec.Checks, tt.tags, tt.skip)), "tags %v skip %v", tt.tags, tt.skip)
	}
}

// FuzzParse: any input either parses into checks with absolute http(s) URLs
// and a status expectation, or gives one *Error on one line.
func FuzzParse(f *testing.F) {
	f.Add(fullSpec)
	f.Add("checks:\n  - path: /\n    methd: GET\n")
	f.Add("checks:\n  - url: http://x.test/${ENV}\n    expect: {status: [2xx, 404], json: {a.b: [1, {c: d}]}}\n")
	f.Add("checks: &a\n  - *a\n")
	f.Add("checks:\n  - path: !!binary aGVsbG8=\n")
	f.Add("{checks: [{path: /, expect: {header: {X: '('}}}]}")
	f.Fuzz(func(t *testing.T, doc string) {
		spec, err := Parse("f.yaml", []byte(doc), testOpts)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err.Error())
			}
			return
		}
		if len(spec.Checks) == 0 {
			t.Fatal("parsed a spec with no checks")
		}
		for _, c := range spec.Checks {
			if checkHTTPURL(c.URL) != nil || len(c.Expect.Status) == 0 || c.Name == "" {
				t.Fatalf("bad check %+v", c)
			}
		}
	})
}
