package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/junit"
)

// suiteScript writes a JUnit report like Playwright's into $1, prints a
// progress line and exits with $2.
const suiteScript = `#!/bin/sh
echo "Running 3 tests using 1 worker"
cat > "$1" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="FAILURES">
<testsuite name="frontend.spec.ts" tests="3">
<testcase name="home page @app-frontend" classname="frontend.spec.ts" time="1.2"/>
<testcase name="search works @app-frontend" classname="frontend.spec.ts" time="0.8">FAILURE_ELEMENT</testcase>
<testcase name="admin @not-production" classname="frontend.spec.ts"><skipped/></testcase>
</testsuite>
</testsuites>
XML
echo "1 failed" >&2
exit "$2"
`

func writeSuite(t *testing.T, failing bool) string {
	dir := t.TempDir()
	s := suiteScript
	if failing {
		s = strings.NewReplacer("FAILURES", "1", "FAILURE_ELEMENT", `<failure message="expect(received).toContain(expected)">Expected: "Results"</failure>`).Replace(s)
	} else {
		s = strings.NewReplacer("FAILURES", "0", "FAILURE_ELEMENT", "").Replace(s)
	}
	p := filepath.Join(dir, "suite.sh")
	require.NoError(t, os.WriteFile(p, []byte(s), 0o755))
	return p
}

func TestRunCommand(t *testing.T) {
	tests := []struct {
		name       string
		failing    bool
		exit       string
		noReport   bool
		wantErr    string
		wantFailed []string
	}{
		{name: "suite passes", exit: "0"},
		{name: "suite with a failing test", failing: true, exit: "1", wantErr: "suite command exited with status 1", wantFailed: []string{"search works @app-frontend"}},
		{name: "failing report, exit 0", failing: true, exit: "0", wantFailed: []string{"search works @app-frontend"}},
		{name: "exit 1 although every test passed", exit: "1", wantErr: "exited with status 1"},
		{name: "no report written", exit: "0", noReport: true, wantErr: "no JUnit report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := writeSuite(t, tt.failing)
			report := filepath.Join(t.TempDir(), "results.xml")
			target := report
			if tt.noReport {
				target = filepath.Join(t.TempDir(), "elsewhere.xml")
			}
			var stdout, stderr bytes.Buffer
			rep, err := RunCommand(context.Background(), Command{Command: script + " " + target + " " + tt.exit, JUnitInput: report, Stdout: &stdout, Stderr: &stderr})
			assert.Contains(t, stdout.String(), "Running 3 tests using 1 worker", "output is streamed")
			assert.Contains(t, stderr.String(), "1 failed")
			o := Result{Suite: rep, SuiteErr: err, SuiteRan: true}
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.wantErr == "" && len(tt.wantFailed) == 0, o.OK())
			if tt.noReport {
				assert.ErrorIs(t, err, ErrNoReport)
				assert.Nil(t, rep)
				return
			}
			require.NotNil(t, rep)
			var failed []string
			for _, c := range rep.Failed() {
				failed = append(failed, c.Name)
			}
			assert.Equal(t, tt.wantFailed, failed)
			for _, name := range tt.wantFailed {
				assert.Contains(t, o.Summary(), name)
			}
			// JUnit output: a suite that failed without failing tests still shows as failed
			back, err := junit.Read(bytes.NewReader(must(o.JUnitXML())))
			require.NoError(t, err)
			assert.Equal(t, !o.OK(), back.Count().Failures+back.Count().Errors > 0)
		})
	}
}

func TestRunCommandRefusesAStaleReport(t *testing.T) {
	report := filepath.Join(t.TempDir(), "results.xml")
	require.NoError(t, os.WriteFile(report, []byte(`<testsuite name="old"><testcase name="passed yesterday"/></testsuite>`), 0o644))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(report, old, old))
	_, err := RunCommand(context.Background(), Command{Command: "true", JUnitInput: report, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	assert.ErrorIs(t, err, ErrNoReport)
	assert.ErrorContains(t, err, "left from an earlier run")
}

// callOnWrite is a writer that calls fn once it has been written word.
type callOnWrite struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	word string
	fn   func()
}

func (w *callOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.fn != nil && strings.Contains(w.buf.String(), w.word) {
		w.fn()
		w.fn = nil
	}
	return len(p), nil
}

// exited reports whether process pid has exited: gone, or a zombie its
// new parent has not reaped yet.
func exited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	// "pid (comm) state ...": the state follows the last ')'
	i := bytes.LastIndexByte(stat, ')')
	return err == nil && i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// The suite is stopped once it says it is running, not at a time, and the
// whole group stops: the background child too.
func TestRunCommandStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	stdout := &callOnWrite{word: "running", fn: cancel}
	_, err := RunCommand(ctx, Command{Command: "sleep 300 & echo $! > " + pidFile + "; echo running; wait",
		JUnitInput: filepath.Join(t.TempDir(), "r.xml"), Stdout: stdout, Stderr: &bytes.Buffer{}, StopGrace: 2 * time.Second})
	assert.ErrorContains(t, err, "suite command stopped")
	assert.ErrorIs(t, err, context.Canceled)
	raw, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(t, err)
	t.Cleanup(func() {
		if !exited(pid) { // it survived: a live process keeps its pid, so this is still our sleep
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// the child's exit is the event; the bound is only for a child left running
	// (signalled alone, the shell would leave it behind)
	assert.Eventually(t, func() bool { return exited(pid) }, 20*time.Second, 10*time.Millisecond,
		"the suite's background child was stopped with it")
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestOutcomeReports(t *testing.T) {
	o := Result{
		Checks: []CheckResult{
			{Name: "home", Method: "GET", URL: "https://x.test/", Passed: true, Attempts: 1, Status: 200, Latency: 12 * time.Millisecond, Duration: 12 * time.Millisecond},
			{Name: "search", Method: "GET", URL: "https://x.test/search", Attempts: 7, Status: 502, Latency: 3 * time.Millisecond,
				Duration: 2 * time.Second, Failure: "status: expected 2xx, got 502", Body: "<html>\n502 Bad Gateway\n</html>"},
			{Name: "not reached", Method: "GET", URL: "https://x.test/n", Failure: "request failed: dial tcp: connection refused"},
		},
		Suite: &junit.Report{Suites: []junit.Suite{{Name: "frontend.spec.ts", Cases: []junit.Case{
			{Name: "home page"}, {Name: "login", Failure: &junit.Problem{Message: "timed out"}}, {Name: "admin", Skipped: &junit.Problem{}},
		}}}},
		SuiteRan: true,
		Elapsed:  2500 * time.Millisecond,
	}
	assert.Equal(t, Tally{Passed: 2, Failed: 3, Skipped: 1, FailedNames: []string{"search", "not reached", "login"}}, o.Tally())
	assert.Equal(t, "2 passed, 3 failed, 1 skipped (failed: search, not reached, login)", o.Summary())
	assert.False(t, o.OK())

	var text bytes.Buffer
	require.NoError(t, o.WriteText(&text))
	assert.Equal(t, `PASS  home  GET https://x.test/  200 in 12ms, 1 attempt
FAIL  search  GET https://x.test/search  502 in 3ms, 7 attempts
      why: status: expected 2xx, got 502
      body (first 500 bytes):
      | <html>
      | 502 Bad Gateway
      | </html>
FAIL  not reached  GET https://x.test/n  no response, 0 attempts
      why: request failed: dial tcp: connection refused
PASS  frontend.spec.ts › home page
FAIL  frontend.spec.ts › login
      why: timed out
SKIP  frontend.spec.ts › admin
smoke-test: 2 passed, 3 failed, 1 skipped (failed: search, not reached, login) in 2.5s
`, text.String())

	back, err := junit.Read(bytes.NewReader(must(o.JUnitXML())))
	require.NoError(t, err)
	assert.Equal(t, junit.Counts{Tests: 6, Failures: 3, Skipped: 1}, back.Count())
	assert.Equal(t, o.Tally().Passed, back.Count().Passed())
	require.Len(t, back.Suites, 2)
	assert.Equal(t, "smoke-test checks", back.Suites[0].Name)
	assert.Equal(t, "status: expected 2xx, got 502", back.Suites[0].Cases[1].Failure.Message)
	assert.Contains(t, back.Suites[0].Cases[1].Failure.Text, "attempts: 7\nlast status: 502")
	assert.Contains(t, back.Suites[0].Cases[1].Failure.Text, "502 Bad Gateway")

	var doc map[string]any
	require.NoError(t, json.Unmarshal(must(o.JSON()), &doc))
	assert.Equal(t, float64(2), doc["passed"])
	assert.Equal(t, float64(3), doc["failed"])
	assert.Equal(t, o.Summary(), doc["summary"])
	checks := doc["checks"].([]any)
	assert.Equal(t, float64(7), checks[1].(map[string]any)["attempts"])
	assert.Len(t, doc["tests"], 3)
}

// The mask here knows the secret only as it is, not escaped: whatever is
// masked in the reports was masked before they were encoded.
func TestMaskedReportsHoldNoSecret(t *testing.T) {
	const secret = `pa&ss<w>"o'rd\ü€✓`
	mask := func(s string) string { return strings.ReplaceAll(s, secret, "***") }
	o := Result{
		Checks: []CheckResult{{Name: "search " + secret, Method: "GET", URL: "https://x.test/?q=" + secret, Tags: []string{"t" + secret},
			Attempts: 2, Status: 500, Failure: `body_contains: "` + secret + `" not in the body`, Body: "echo: " + secret}},
		Suite: &junit.Report{Suites: []junit.Suite{{Name: "suite " + secret, Cases: []junit.Case{
			{Name: "login " + secret, Classname: secret, SystemOut: "out " + secret,
				Failure: &junit.Problem{Message: "got " + secret, Type: secret, Text: "text " + secret}},
			{Name: "skipped", Skipped: &junit.Problem{Message: secret}},
		}}}},
		SuiteErr: fmt.Errorf("%w: report of %s", ErrNoReport, secret),
		SuiteRan: true,
	}
	m := o.Masked(mask)
	assert.ErrorIs(t, m.SuiteErr, ErrNoReport, "the masked error still unwraps")
	assert.Contains(t, o.Checks[0].Name, secret, "the outcome itself is left as it was")
	var text bytes.Buffer
	require.NoError(t, m.WriteText(&text))
	for name, data := range map[string][]byte{"json": must(m.JSON()), "junit": must(m.JUnitXML()), "text": text.Bytes(), "summary": []byte(m.Summary())} {
		t.Run(name, func(t *testing.T) {
			assert.Contains(t, string(data), "***")
			for _, part := range []string{"ss<w", `ss\u003cw`, "ss&lt;w", "ü€✓", `o'rd`, `o&#39;rd`} {
				assert.NotContains(t, string(data), part)
			}
		})
	}
	back, err := junit.Read(bytes.NewReader(must(m.JUnitXML())))
	require.NoError(t, err)
	assert.Equal(t, "login ***", back.Suites[1].Cases[0].Name)
	assert.Equal(t, "text ***", back.Suites[1].Cases[0].Failure.Text)
}
