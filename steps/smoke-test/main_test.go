package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/junit"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

type result struct {
	code           int
	stdout, stderr string
}

func runStep(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := stepcli.Main(step(), append([]string{"smoke-test"}, args...), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// farDeadline is a --deadline no test run gets near: it only bounds a test
// that went wrong, the run ends on an event.
const farDeadline = "1m"

// runStepToFirstOutcomes runs the step like runStep, with --deadline
// farDeadline, and stops it the way SIGTERM does (its context is cancelled)
// once each of want checks has logged the outcome of its first attempt:
// passed, or failing and waiting to retry. A check that fails for good is
// then reported with that first outcome however loaded the machine is.
func runStepToFirstOutcomes(t *testing.T, want int, args ...string) result {
	t.Helper()
	stop, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	w := &outcomeWatch{want: want, seen: map[string]bool{}, stop: stopRun}
	s := step()
	run := s.Run
	s.Run = func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
		return run(ctx, c, rt)
	}
	var out bytes.Buffer
	args = append(append([]string{"smoke-test"}, args...), "--deadline", farDeadline, "--log-format", "json")
	code := stepcli.Main(s, args, &out, w)
	require.Len(t, w.seen, want, "every check logged an outcome before the deadline: %s", w.String())
	return result{code, out.String(), w.String()}
}

// outcomeWatch is the step's stderr: it keeps what is written and calls
// stop once want checks have logged an outcome in the JSON log.
type outcomeWatch struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	want    int
	seen    map[string]bool
	stop    func()
}

func (w *outcomeWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		line, rest, ok := bytes.Cut(w.partial, []byte("\n"))
		if !ok {
			break
		}
		w.partial = rest
		var rec struct{ Msg, Check string }
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "check passed", "check failed", "check failing, will retry until the deadline":
			w.seen[rec.Check] = true
			if len(w.seen) == w.want {
				w.stop()
			}
		}
	}
	return len(p), nil
}

func (w *outcomeWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// lastLine is the step's final error line.
func (r result) lastLine() string {
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	return lines[len(lines)-1]
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// app is a loopback web app recording the paths it was asked for.
type app struct {
	*httptest.Server
	mu   sync.Mutex
	hits []string
}

func newApp(t *testing.T, tls bool) *app {
	a := &app{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits = append(a.hits, r.URL.Path)
		a.mu.Unlock()
		switch r.URL.Path {
		case "/echo-auth":
			// a misbehaving app that prints the credentials it got into an error page
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "Authorization: %s / %s", r.Header.Get("Authorization"), r.Header.Get("X-Api-Token"))
		case "/private":
			if u, p, ok := r.BasicAuth(); !ok || u != "govuk" || p != "hunter2-secret" {
				http.Error(w, "unauthorised", http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "welcome")
		case "/broken":
			http.Error(w, "Internal Server Error: frontend", http.StatusInternalServerError)
		default:
			io.WriteString(w, "<title>GOV.UK</title> "+r.URL.Path)
		}
	})
	a.Server = httptest.NewUnstartedServer(h)
	a.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		a.StartTLS()
	} else {
		a.Start()
	}
	t.Cleanup(a.Close)
	return a
}

func (a *app) paths() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := append([]string(nil), a.hits...)
	sort.Strings(out)
	return out
}

const taggedSpec = `checks:
  - name: frontend home
    path: /${ENV}/home
    tags: ["@app-frontend"]
    expect:
      body_contains: GOV.UK
  - name: frontend admin
    path: /admin
    tags: ["@app-frontend", "@not-production"]
  - name: publisher
    path: /publisher
    tags: ["@app-publisher"]
  - name: untagged
    path: /untagged
`

func TestPassingRunWritesEveryReport(t *testing.T) {
	srv := newApp(t, false)
	spec := writeFile(t, "checks.yaml", taggedSpec)
	dir := t.TempDir()
	r := runStep(t, "--spec", spec, "--base-url", srv.URL, "--env", "staging",
		"--junit-output", filepath.Join(dir, "junit.xml"), "--json-output", filepath.Join(dir, "out", "result.json"),
		"--outputs-dir", filepath.Join(dir, "outputs"))
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "PASS  frontend home  GET "+srv.URL+"/staging/home  200 in ")
	assert.Contains(t, r.stdout, "smoke-test: 4 passed, 0 failed in ")
	assert.Equal(t, []string{"/admin", "/publisher", "/staging/home", "/untagged"}, srv.paths())

	rep, err := junit.Read(strings.NewReader(readFile(t, filepath.Join(dir, "junit.xml"))))
	require.NoError(t, err)
	assert.Equal(t, junit.Counts{Tests: 4}, rep.Count())
	assert.Contains(t, readFile(t, filepath.Join(dir, "out", "result.json")), `"passed": 4`)
	assert.Equal(t, "4", readFile(t, filepath.Join(dir, "outputs", "passed")))
	assert.Equal(t, "0", readFile(t, filepath.Join(dir, "outputs", "failed")))
	assert.Equal(t, "4 passed, 0 failed", readFile(t, filepath.Join(dir, "outputs", "summary")))
	assert.Equal(t, "passed", readFile(t, filepath.Join(dir, "outputs", "outcome")))
}

func TestTagSelection(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"all", nil, []string{"/admin", "/publisher", "/production/home", "/untagged"}},
		{"tags", []string{"--tags", "@app-frontend"}, []string{"/admin", "/production/home"}},
		{"tags and skip-tags", []string{"--tags", "@app-frontend", "--skip-tags", "@not-production"}, []string{"/production/home"}},
		{"two tags, comma-separated", []string{"--tags", "@app-frontend,app-publisher"}, []string{"/admin", "/publisher", "/production/home"}},
		{"skip-tags only", []string{"--skip-tags", "@not-production"}, []string{"/publisher", "/production/home", "/untagged"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newApp(t, false)
			junitOut := filepath.Join(t.TempDir(), "junit.xml")
			args := append([]string{"--spec", writeFile(t, "checks.yaml", taggedSpec), "--base-url", srv.URL, "--env", "production", "--junit-output", junitOut}, tt.args...)
			r := runStep(t, args...)
			require.Equal(t, exitcode.OK, r.code, r.stderr)
			want := append([]string(nil), tt.want...)
			sort.Strings(want)
			assert.Equal(t, want, srv.paths())
			rep, err := junit.Read(strings.NewReader(readFile(t, junitOut)))
			require.NoError(t, err)
			assert.Equal(t, len(tt.want), rep.Count().Tests)
		})
	}
}

func TestFailingCheckExitsOne(t *testing.T) {
	srv := newApp(t, false)
	spec := writeFile(t, "checks.yaml", "checks:\n  - name: home\n    path: /\n  - name: broken page\n    path: /broken\n")
	dir := t.TempDir()
	r := runStepToFirstOutcomes(t, 2, "--spec", spec, "--base-url", srv.URL, "--outputs-dir", dir, "--junit-output", filepath.Join(dir, "j.xml"))
	assert.Equal(t, exitcode.Failed, r.code)
	assert.Contains(t, r.stdout, "FAIL  broken page  GET "+srv.URL+"/broken  500 in ")
	assert.Contains(t, r.stdout, "why: status: expected 2xx, got 500")
	assert.Contains(t, r.stdout, "| Internal Server Error: frontend")
	assert.Equal(t, "smoke-test: smoke tests failed: 1 passed, 1 failed (failed: broken page)", r.lastLine())
	assert.Equal(t, "1 passed, 1 failed (failed: broken page)", readFile(t, filepath.Join(dir, "summary")))
	assert.Equal(t, "checks-failed", readFile(t, filepath.Join(dir, "outcome")))
	rep, err := junit.Read(strings.NewReader(readFile(t, filepath.Join(dir, "j.xml"))))
	require.NoError(t, err)
	assert.Equal(t, junit.Counts{Tests: 2, Failures: 1}, rep.Count())
}

func TestBadSpecsExitTwoWithLine(t *testing.T) {
	tests := []struct {
		name, spec, want string
	}{
		{"unknown key", "checks:\n  - path: /\n    expect:\n      satus: 200\n", `checks.yaml:4: unknown key "satus"`},
		{"wrong type", "checks:\n  - path: /\n    expect:\n      follow_redirects: [x]\n", "checks.yaml:4: follow_redirects: wrong type: expected true or false, got a list"},
		{"missing url", "checks:\n  - path: /\n\n  - name: lost\n    tags: [x]\n", "checks.yaml:4: missing url: a check needs a url or a path"},
		{"bad regex", "checks:\n  - path: /\n    expect:\n      body_regex: 'a(b'\n", "checks.yaml:4: body_regex: error parsing regexp: missing closing ): `a(b`"},
		{"unset variable", "checks:\n  - path: /\n  - url: https://${SMOKE_TEST_UNSET_HOST}/\n", "checks.yaml:3: url: variable ${SMOKE_TEST_UNSET_HOST} is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newApp(t, false)
			spec := writeFile(t, "checks.yaml", tt.spec)
			r := runStep(t, "--spec", spec, "--base-url", srv.URL)
			assert.Equal(t, exitcode.Invalid, r.code, r.stderr)
			assert.True(t, strings.HasPrefix(r.lastLine(), "smoke-test: "+filepath.Dir(spec)+"/"+tt.want), r.lastLine())
			assert.Empty(t, srv.paths(), "nothing is requested when the spec is invalid")
		})
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	srv := newApp(t, false)
	spec := writeFile(t, "checks.yaml", taggedSpec)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing to run", nil, "nothing to run"},
		{"command without junit-input", []string{"--command", "true"}, "--command needs --junit-input"},
		{"junit-input without command", []string{"--spec", spec, "--base-url", srv.URL, "--junit-input", "x.xml"}, "give --command too"},
		{"tags without a spec", []string{"--command", "true", "--junit-input", "r.xml", "--tags", "@app-frontend"}, "without --spec, filter in the --command itself"},
		{"zero concurrency", []string{"--spec", spec, "--base-url", srv.URL, "--concurrency", "0"}, "--concurrency must be at least 1"},
		{"bad deadline", []string{"--spec", spec, "--base-url", srv.URL, "--deadline", "soon"}, "invalid value"},
		{"bad base url", []string{"--spec", spec, "--base-url", "www.example"}, "want an absolute http:// or https:// URL"},
		{"basic auth without base url", []string{"--spec", writeFile(t, "urls.yaml", "checks:\n  - url: "+srv.URL+"/private\n"),
			"--basic-auth-file", writeFile(t, "auth", "govuk:hunter2-secret\n")}, "--basic-auth-file needs --base-url"},
		{"missing spec", []string{"--spec", "/nonexistent/checks.yaml", "--base-url", srv.URL}, "no such file"},
		{"no check selected", []string{"--spec", spec, "--base-url", srv.URL, "--env", "x", "--tags", "@app-nothing"}, "no check is selected by --tags @app-nothing"},
		{"path without base url", []string{"--spec", spec, "--env", "x"}, "needs --base-url"},
		{"bad basic auth file", []string{"--spec", spec, "--base-url", srv.URL, "--basic-auth-file", writeFile(t, "auth", "just-a-password\n")}, "must hold one line user:password"},
		{"missing basic auth file", []string{"--spec", spec, "--base-url", srv.URL, "--basic-auth-file", "/nonexistent/auth"}, "--basic-auth-file"},
		{"bad ca file", []string{"--spec", spec, "--base-url", srv.URL, "--ca-file", writeFile(t, "ca.pem", "nope")}, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStep(t, tt.args...)
			assert.Equal(t, exitcode.Invalid, r.code, r.stderr)
			assert.Contains(t, r.lastLine(), tt.want)
		})
	}
	assert.Empty(t, srv.paths())
}

func TestRolloutThroughTheStep(t *testing.T) {
	// pods being replaced: the first two requests get a 502, then the app is up
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	spec := writeFile(t, "checks.yaml", "checks:\n  - name: home\n    path: /\n")
	r := runStep(t, "--spec", spec, "--base-url", srv.URL, "--deadline", farDeadline)
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	assert.Regexp(t, `PASS  home  GET \S+  200 in \S+, 3 attempts`, r.stdout)
	assert.Equal(t, int32(3), hits.Load(), "a passing check is not run again")
	assert.Contains(t, r.stderr, "check failing, will retry until the deadline", "the first failure is logged")
}

func TestCredentialsNeverInOutput(t *testing.T) {
	srv := newApp(t, false)
	t.Setenv("SMOKE_API_TOKEN", "tok-9f8e7d6c5b")
	spec := writeFile(t, "checks.yaml", `checks:
  - name: private
    path: /private
  - name: leaky
    path: /echo-auth
    headers:
      X-Api-Token: ${SMOKE_API_TOKEN}
`)
	dir := t.TempDir()
	auth := writeFile(t, "auth", "govuk:hunter2-secret\n")
	r := runStepToFirstOutcomes(t, 2, "--spec", spec, "--base-url", srv.URL, "--basic-auth-file", auth, "--debug",
		"--junit-output", filepath.Join(dir, "j.xml"), "--json-output", filepath.Join(dir, "r.json"), "--outputs-dir", dir)
	require.Equal(t, exitcode.Failed, r.code, r.stderr)
	assert.Contains(t, r.stdout, "PASS  private", "basic auth from --basic-auth-file is sent")
	assert.Contains(t, r.stdout, "Authorization: Basic *** / ***", "the echoed credentials are masked")
	everything := r.stdout + r.stderr + readFile(t, filepath.Join(dir, "j.xml")) + readFile(t, filepath.Join(dir, "r.json")) + readFile(t, filepath.Join(dir, "summary"))
	for _, secret := range []string{"hunter2-secret", base64.StdEncoding.EncodeToString([]byte("govuk:hunter2-secret")), "tok-9f8e7d6c5b"} {
		assert.NotContains(t, everything, secret)
	}
}

func TestTLSThroughTheStep(t *testing.T) {
	srv := newApp(t, true)
	spec := writeFile(t, "checks.yaml", "checks:\n  - name: secure\n    path: /\n")
	r := runStepToFirstOutcomes(t, 1, "--spec", spec, "--base-url", srv.URL)
	assert.Equal(t, exitcode.Failed, r.code)
	assert.Contains(t, r.stdout, "certificate")
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	r = runStep(t, "--spec", spec, "--base-url", srv.URL, "--ca-file", ca)
	assert.Equal(t, exitcode.OK, r.code, r.stderr)
}

func TestCommandMode(t *testing.T) {
	script := writeFile(t, "suite.sh", `echo "Running 2 tests using 1 worker"
cat > "$1" <<'XML'
<testsuites><testsuite name="frontend.spec.ts">
<testcase name="home page @app-frontend"/>
<testcase name="search works @app-frontend"><failure message="expect(locator).toBeVisible() failed">timeout 5000ms</failure></testcase>
</testsuite></testsuites>
XML
exit 1
`)
	dir := t.TempDir()
	results := filepath.Join(dir, "results.xml")
	r := runStep(t, "--command", "sh "+script+" "+results, "--junit-input", results, "--outputs-dir", dir, "--junit-output", filepath.Join(dir, "out.xml"))
	assert.Equal(t, exitcode.Failed, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Running 2 tests using 1 worker", "the suite's output is streamed")
	assert.Contains(t, r.stdout, "FAIL  frontend.spec.ts › search works @app-frontend\n      why: expect(locator).toBeVisible() failed timeout 5000ms")
	summary := readFile(t, filepath.Join(dir, "summary"))
	assert.Equal(t, "1 passed, 1 failed (failed: search works @app-frontend); suite command exited with status 1", summary)
	assert.Contains(t, r.lastLine(), "search works @app-frontend")
	rep, err := junit.Read(strings.NewReader(readFile(t, filepath.Join(dir, "out.xml"))))
	require.NoError(t, err)
	assert.Equal(t, junit.Counts{Tests: 2, Failures: 1}, rep.Count())
}

func TestCommandAndSpecTogether(t *testing.T) {
	srv := newApp(t, false)
	dir := t.TempDir()
	results := filepath.Join(dir, "results.xml")
	cmd := fmt.Sprintf(`printf '<testsuite name="e2e"><testcase name="journey"/></testsuite>' > %s`, results)
	r := runStep(t, "--spec", writeFile(t, "checks.yaml", taggedSpec), "--base-url", srv.URL, "--env", "x",
		"--command", cmd, "--junit-input", results, "--outputs-dir", dir)
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "PASS  e2e › journey")
	assert.Equal(t, "5", readFile(t, filepath.Join(dir, "passed")))
}

func TestDryRunRequestsNothing(t *testing.T) {
	srv := newApp(t, false)
	r := runStep(t, "--spec", writeFile(t, "checks.yaml", taggedSpec), "--base-url", srv.URL, "--env", "integration", "--tags", "app-frontend", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	assert.Equal(t, "check  frontend home  GET "+srv.URL+"/integration/home  tags: @app-frontend\n"+
		"check  frontend admin  GET "+srv.URL+"/admin  tags: @app-frontend @not-production\n"+
		"dry run: 2 checks (concurrency 16, deadline 5m0s), nothing requested\n", r.stdout)
	assert.Empty(t, srv.paths())
}

// awkwardSecret holds what JSON, XML and Go quoting escape, and non-ASCII.
const awkwardSecret = `pa&ss<w>"o'rd\ü€✓`

// encodedForms is s as the encoders of the step's outputs write it.
func encodedForms(t *testing.T, s string) []string {
	t.Helper()
	js, err := json.Marshal(s)
	require.NoError(t, err)
	var x bytes.Buffer
	require.NoError(t, xml.EscapeText(&x, []byte(s)))
	q := strconv.Quote(s)
	return []string{s, string(js[1 : len(js)-1]), x.String(), q[1 : len(q)-1]}
}

// everything is what a run printed and wrote: stdout, stderr (the log) and
// every file in dir.
func everything(t *testing.T, r result, dir string) string {
	all := r.stdout + r.stderr
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			all += readFile(t, filepath.Join(dir, e.Name()))
		}
	}
	return all
}

func TestReportsMaskSecretsBeforeEncoding(t *testing.T) {
	srv := newApp(t, false)
	// single-quoted YAML: ' is doubled, \ is literal
	spec := writeFile(t, "checks.yaml", "checks:\n  - name: leaky\n    path: /echo-auth\n    headers:\n      Authorization: 'Bearer "+
		strings.ReplaceAll(awkwardSecret, "'", "''")+"'\n")
	dir := t.TempDir()
	// the check fails for good: stopped after the first response, whose echoed
	// secret the reports must hold masked
	r := runStepToFirstOutcomes(t, 1, "--spec", spec, "--base-url", srv.URL, "--debug",
		"--junit-output", filepath.Join(dir, "j.xml"), "--json-output", filepath.Join(dir, "r.json"), "--outputs-dir", dir)
	require.Equal(t, exitcode.Failed, r.code, r.stderr)
	require.Contains(t, r.stdout, "| Authorization: *** / ", "the app echoed the header")
	all := everything(t, r, dir)
	for _, form := range encodedForms(t, awkwardSecret) {
		assert.NotContains(t, all, form)
	}
	assert.NotContains(t, all, "ü€✓")

	// the reports are still well-formed, with the mask where the secret was
	rep, err := junit.Read(strings.NewReader(readFile(t, filepath.Join(dir, "j.xml"))))
	require.NoError(t, err)
	require.Len(t, rep.Failed(), 1)
	assert.Contains(t, rep.Failed()[0].Failure.Text, "Authorization: *** /")
	var doc struct {
		Checks []struct{ Body string } `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "r.json"))), &doc))
	require.Len(t, doc.Checks, 1)
	assert.Equal(t, "Authorization: *** / ", doc.Checks[0].Body)
}

// seenRequest is one request a loopback server got: which server, over
// which scheme, for which path, with which headers.
type seenRequest struct {
	Server, Scheme, Path string
	Header               http.Header
}

// recorder serves /redirect?to=URL (a 302 there), /private (basic auth
// required) and anything else with 200, recording every request.
type recorder struct {
	mu     sync.Mutex
	seen   []seenRequest
	bodies []string // "server: body" of each POST /form
}

func (a *recorder) handler(server string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		a.mu.Lock()
		a.seen = append(a.seen, seenRequest{server, scheme, r.URL.Path, r.Header.Clone()})
		a.mu.Unlock()
		switch r.URL.Path {
		case "/redirect":
			code := http.StatusFound
			if c := r.URL.Query().Get("code"); c != "" {
				code, _ = strconv.Atoi(c)
			}
			http.Redirect(w, r, r.URL.Query().Get("to"), code)
		case "/form":
			body, _ := io.ReadAll(r.Body)
			a.mu.Lock()
			a.bodies = append(a.bodies, server+": "+string(body))
			a.mu.Unlock()
		case "/private":
			if u, p, ok := r.BasicAuth(); !ok || u != "govuk" || p != "hunter2-secret" {
				http.Error(w, "unauthorised", http.StatusUnauthorized)
			}
		}
	})
}

func (a *recorder) take() []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.seen
	a.seen = nil
	return out
}

// authEvent is a seenRequest with only whether it carried an Authorization
// header.
type authEvent struct {
	Server, Scheme, Path string
	Auth                 bool
}

func authEvents(seen []seenRequest) []authEvent {
	out := []authEvent{}
	for _, s := range seen {
		out = append(out, authEvent{s.Server, s.Scheme, s.Path, s.Header.Get("Authorization") != ""})
	}
	return out
}

// serveOn serves h on l until the test ends.
func serveOn(t *testing.T, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// dualListener answers plain HTTP and TLS on one port, told apart by a
// connection's first byte (0x16 opens a TLS handshake), so that a redirect
// can change the scheme alone.
type dualListener struct {
	net.Listener
	tls *tls.Config
}

func (l dualListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a client that sends nothing cannot stall the server
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if err == nil && first[0] == 0x16 {
		return tls.Server(pc, l.tls), nil
	}
	return pc, nil
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// origins are loopback servers that differ from app in one part of the
// origin each, all recording into one recorder; ca is a CA file trusting
// dual's certificate.
type origins struct {
	app, otherPort, otherHost net.Listener
	// dual answers plain HTTP and TLS on one port, for a scheme-only change
	dual net.Listener
	ca   string
}

func startOrigins(t *testing.T, rec *recorder) origins {
	listen := func(addr string) net.Listener {
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		return l
	}
	o := origins{app: listen("127.0.0.1:0"), otherPort: listen("127.0.0.1:0"), otherHost: listen("127.0.0.2:0"), dual: listen("127.0.0.1:0")}
	serveOn(t, o.app, rec.handler("app"))
	serveOn(t, o.otherPort, rec.handler("other port"))
	serveOn(t, o.otherHost, rec.handler("other host"))
	// a certificate for 127.0.0.1, and a CA file trusting it
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS()
	certSrv.Close()
	serveOn(t, dualListener{o.dual, &tls.Config{Certificates: certSrv.TLS.Certificates, NextProtos: []string{"http/1.1"}}}, rec.handler("dual"))
	o.ca = writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certSrv.Certificate().Raw})))
	return o
}

// at is l's URL with scheme.
func at(l net.Listener, scheme string) string { return scheme + "://" + l.Addr().String() }

func TestBasicAuthGoesToTheBaseOriginOnly(t *testing.T) {
	rec := &recorder{}
	o := startOrigins(t, rec)
	app, otherPort, otherHost, dual, ca := o.app, o.otherPort, o.otherHost, o.dual, o.ca
	auth := writeFile(t, "auth", "govuk:hunter2-secret\n")

	follow := "\n    expect: {follow_redirects: true}"
	tests := []struct {
		name, base, check string // check: one check's YAML after "- name: c\n    "
		want              []authEvent
	}{
		{"a check on the base origin", at(app, "http"), "path: /private",
			[]authEvent{{"app", "http", "/private", true}}},
		{"a redirect within the base origin keeps it", at(app, "http"), "path: /redirect?to=/private" + follow,
			[]authEvent{{"app", "http", "/redirect", true}, {"app", "http", "/private", true}}},
		{"a redirect to another port", at(app, "http"), "path: /redirect?to=" + at(otherPort, "http") + "/landing" + follow,
			[]authEvent{{"app", "http", "/redirect", true}, {"other port", "http", "/landing", false}}},
		{"a redirect to another loopback host", at(app, "http"), "path: /redirect?to=" + at(otherHost, "http") + "/landing" + follow,
			[]authEvent{{"app", "http", "/redirect", true}, {"other host", "http", "/landing", false}}},
		{"a redirect from http to https on the same host and port", at(dual, "http"), "path: /redirect?to=" + at(dual, "https") + "/landing" + follow,
			[]authEvent{{"dual", "http", "/redirect", true}, {"dual", "https", "/landing", false}}},
		{"a redirect from https to http on the same host and port", at(dual, "https"), "path: /redirect?to=" + at(dual, "http") + "/landing" + follow,
			[]authEvent{{"dual", "https", "/redirect", true}, {"dual", "http", "/landing", false}}},
		{"a check's url on another port", at(app, "http"), "url: " + at(otherPort, "http") + "/private\n    expect: {status: 401}",
			[]authEvent{{"other port", "http", "/private", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.take()
			spec := writeFile(t, "checks.yaml", "checks:\n  - name: c\n    "+tt.check+"\n")
			r := runStep(t, "--spec", spec, "--base-url", tt.base, "--basic-auth-file", auth, "--ca-file", ca)
			require.Equal(t, exitcode.OK, r.code, r.stdout+r.stderr)
			assert.Equal(t, tt.want, authEvents(rec.take()))
		})
	}
}

// specHeaders are the headers the next test's check sets: secrets, a custom
// one, and the safe ones that may follow a redirect anywhere.
var specHeaders = map[string]string{
	"Authorization":   "Bearer own-token-1",
	"X-Api-Token":     "api-token-2",
	"Cookie":          "session=session-3",
	"X-Request-Tag":   "smoke-4",
	"Accept":          "text/html",
	"Accept-Encoding": "identity",
	"Accept-Language": "en-GB",
	"Cache-Control":   "no-cache",
	"User-Agent":      "slipway-smoke",
}

// headerEvent is a seenRequest with only the names of the spec's headers
// that arrived with the spec's value (sorted), then Referer if one arrived
// (the client sets it from the previous URL).
type headerEvent struct {
	Server, Scheme, Path string
	Headers              []string
}

func headerEvents(seen []seenRequest) []headerEvent {
	out := []headerEvent{}
	for _, s := range seen {
		e := headerEvent{s.Server, s.Scheme, s.Path, []string{}}
		for name, v := range specHeaders {
			if s.Header.Get(name) == v {
				e.Headers = append(e.Headers, name)
			}
		}
		sort.Strings(e.Headers)
		if s.Header.Get("Referer") != "" {
			e.Headers = append(e.Headers, "Referer")
		}
		out = append(out, e)
	}
	return out
}

func TestSpecHeadersStayOnTheCheckOrigin(t *testing.T) {
	rec := &recorder{}
	o := startOrigins(t, rec)
	var all []string
	yaml := "\n    headers:"
	for name, v := range specHeaders {
		all = append(all, name)
		yaml += fmt.Sprintf("\n      %s: %q", name, v)
	}
	sort.Strings(all)
	safe := []string{"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "User-Agent"}
	redirect := func(to string) string { return "/redirect?to=" + url.QueryEscape(to) }

	tests := []struct {
		name, base, path string
		want             []headerEvent
	}{
		{"a redirect within the origin keeps them", at(o.app, "http"), redirect("/landing"),
			[]headerEvent{{"app", "http", "/redirect", all}, {"app", "http", "/landing", append(all[:len(all):len(all)], "Referer")}}},
		{"a redirect to another port", at(o.app, "http"), redirect(at(o.otherPort, "http") + "/landing"),
			[]headerEvent{{"app", "http", "/redirect", all}, {"other port", "http", "/landing", safe}}},
		{"a redirect to another loopback host", at(o.app, "http"), redirect(at(o.otherHost, "http") + "/landing"),
			[]headerEvent{{"app", "http", "/redirect", all}, {"other host", "http", "/landing", safe}}},
		{"a redirect from http to https on the same host and port", at(o.dual, "http"), redirect(at(o.dual, "https") + "/landing"),
			[]headerEvent{{"dual", "http", "/redirect", all}, {"dual", "https", "/landing", safe}}},
		{"a redirect from https to http on the same host and port", at(o.dual, "https"), redirect(at(o.dual, "http") + "/landing"),
			[]headerEvent{{"dual", "https", "/redirect", all}, {"dual", "http", "/landing", safe}}},
		{"back to the origin after leaving it", at(o.app, "http"), redirect(at(o.otherPort, "http") + redirect(at(o.app, "http")+"/landing")),
			[]headerEvent{{"app", "http", "/redirect", all}, {"other port", "http", "/redirect", safe}, {"app", "http", "/landing", safe}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.take()
			spec := writeFile(t, "checks.yaml", "checks:\n  - name: c\n    path: "+tt.path+yaml+"\n    expect: {follow_redirects: true}\n")
			r := runStep(t, "--spec", spec, "--base-url", tt.base, "--ca-file", o.ca)
			require.Equal(t, exitcode.OK, r.code, r.stdout+r.stderr)
			assert.Equal(t, tt.want, headerEvents(rec.take()))
		})
	}
}

// A 307/308 resends the body: it may be followed within the origin only.
func TestBodyIsNotResentToAnotherOrigin(t *testing.T) {
	rec := &recorder{}
	o := startOrigins(t, rec)
	redirect := func(code int, to string) string {
		return "/redirect?code=" + strconv.Itoa(code) + "&to=" + url.QueryEscape(to)
	}
	tests := []struct {
		name, path string
		code       int
		bodies     []string
	}{
		{"307 within the origin", redirect(307, "/form"), exitcode.OK, []string{"app: user=govuk&password=hunter2-secret"}},
		{"307 to another port", redirect(307, at(o.otherPort, "http")+"/form"), exitcode.Failed, nil},
		{"308 to another host", redirect(308, at(o.otherHost, "http")+"/form"), exitcode.Failed, nil},
		{"303 to another host drops the body itself", redirect(303, at(o.otherHost, "http")+"/form"), exitcode.OK, []string{"other host: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.take()
			rec.bodies = nil
			spec := writeFile(t, "checks.yaml", "checks:\n  - name: c\n    method: POST\n    path: "+tt.path+
				"\n    body: user=govuk&password=hunter2-secret\n    expect: {follow_redirects: true}\n")
			r := runStepToFirstOutcomes(t, 1, "--spec", spec, "--base-url", at(o.app, "http"))
			require.Equal(t, tt.code, r.code, r.stdout+r.stderr)
			if tt.code != exitcode.OK {
				assert.Contains(t, r.stdout, "it would resend the request body to another origin")
			}
			assert.Equal(t, tt.bodies, rec.bodies)
		})
	}
}

func TestSecretVarsAreMasked(t *testing.T) {
	srv := newApp(t, false)
	secrets := map[string]string{
		"smoke_deploy_token":  "tok-5c2d9e",            // *TOKEN*, any case
		"SmokeApiKey":         "key-8a7b6c",            // *KEY*
		"SMOKE_DB_PASSWORD":   "pw-1f2e3d",             // *PASSWORD*
		"SMOKE_CLIENT_SECRET": "sec-4b5a69",            // *SECRET*
		"SMOKE_SEARCH_PHRASE": `find "me" & <you> ü€✓`, // listed in --secret-vars
	}
	for name, v := range secrets {
		t.Setenv(name, v)
	}
	t.Setenv("SMOKE_REGION", "eu-west-2") // not secret: stays visible
	spec := writeFile(t, "checks.yaml", `checks:
  - name: search ${SMOKE_SEARCH_PHRASE}
    path: /broken?token=${smoke_deploy_token}&key=${SmokeApiKey}&pw=${SMOKE_DB_PASSWORD}&s=${SMOKE_CLIENT_SECRET}&region=${SMOKE_REGION}
    expect:
      body_contains: ${SMOKE_SEARCH_PHRASE}
`)
	dir := t.TempDir()
	args := []string{"--spec", spec, "--base-url", srv.URL, "--secret-vars", "SMOKE_SEARCH_PHRASE,SMOKE_UNUSED",
		"--debug", "--junit-output", filepath.Join(dir, "j.xml"), "--json-output", filepath.Join(dir, "r.json"), "--outputs-dir", dir}
	r := runStepToFirstOutcomes(t, 1, args...)
	require.Equal(t, exitcode.Failed, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "FAIL  search ***  GET "+srv.URL+"/broken?token=***&key=***&pw=***&s=***&region=eu-west-2  ")
	assert.Equal(t, "0 passed, 1 failed (failed: search ***)", readFile(t, filepath.Join(dir, "summary")))
	all := everything(t, r, dir)
	for name, v := range secrets {
		for _, form := range encodedForms(t, v) {
			assert.NotContains(t, all, form, name)
		}
	}
	assert.NotContains(t, all, "ü€✓")

	r = runStep(t, append(args, "--dry-run")...)
	require.Equal(t, exitcode.OK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "check  search ***  GET "+srv.URL+"/broken?token=***&key=***&pw=***&s=***&region=eu-west-2\n")
}
