package smoke

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/slipway-deploy/slipway/internal/junit"
	"github.com/slipway-deploy/slipway/internal/oneline"
)

// Result is everything a smoke-test run found: the spec's checks and the
// external suite's report, either of which may be absent.
type Result struct {
	Checks []CheckResult
	// Suite is the external suite's report (nil when none ran or it left none).
	Suite *junit.Report
	// SuiteErr is set when the suite command failed or left no report.
	SuiteErr error
	// SuiteRan tells whether a suite command was part of the run.
	SuiteRan bool
	Elapsed  time.Duration
	// DryRun: nothing was requested; Planned checks would have been.
	DryRun  bool
	Planned int
	// ran is set once the checks and the suite ran: only then are there
	// counts to report.
	ran bool
}

// Tally counts passed, failed and skipped checks and tests, and names the failed ones.
type Tally struct {
	Passed, Failed, Skipped int
	FailedNames             []string
}

// Tally counts the result.
func (o Result) Tally() Tally {
	var t Tally
	for _, r := range o.Checks {
		if r.Passed {
			t.Passed++
		} else {
			t.Failed++
			t.FailedNames = append(t.FailedNames, r.Name)
		}
	}
	if o.Suite != nil {
		n := o.Suite.Count()
		t.Passed += n.Passed()
		t.Skipped += n.Skipped
		for _, c := range o.Suite.Failed() {
			t.Failed++
			t.FailedNames = append(t.FailedNames, c.Name)
		}
	}
	return t
}

// OK reports whether everything passed.
func (o Result) OK() bool { return o.SuiteErr == nil && o.Tally().Failed == 0 }

// Summary is one line: "12 passed, 1 failed (failed: search)".
func (o Result) Summary() string {
	t := o.Tally()
	s := fmt.Sprintf("%d passed, %d failed", t.Passed, t.Failed)
	if t.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", t.Skipped)
	}
	if len(t.FailedNames) > 0 {
		names := t.FailedNames
		more := ""
		if len(names) > 10 {
			more = fmt.Sprintf(" and %d more", len(names)-10)
			names = names[:10]
		}
		s += " (failed: " + strings.Join(names, ", ") + more + ")"
	}
	if o.SuiteErr != nil {
		s += "; " + oneline.Fold(o.SuiteErr.Error())
	}
	return s
}

// WriteText prints one line per check and test, the reason and the body
// excerpt under each failure, and the summary last.
func (o Result) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, r := range o.Checks {
		verdict := "PASS"
		if !r.Passed {
			verdict = "FAIL"
		}
		status := "no response"
		if r.Status != 0 {
			status = fmt.Sprintf("%d in %s", r.Status, roundDuration(r.Latency))
		}
		fmt.Fprintf(&b, "%s  %s  %s %s  %s, %s\n", verdict, r.Name, r.Method, r.URL, status, plural(r.Attempts, "attempt"))
		if !r.Passed {
			fmt.Fprintf(&b, "      why: %s\n", r.Failure)
			if r.Body != "" {
				b.WriteString("      body (first 500 bytes):\n")
				for _, line := range strings.Split(strings.TrimRight(r.Body, "\n"), "\n") {
					fmt.Fprintf(&b, "      | %s\n", line)
				}
			}
		}
	}
	if o.Suite != nil {
		for _, s := range o.Suite.Suites {
			for _, c := range s.Cases {
				switch {
				case c.Failed():
					p := c.Failure
					if p == nil {
						p = c.Error
					}
					fmt.Fprintf(&b, "FAIL  %s › %s\n", s.Name, c.Name)
					if msg := strings.TrimSpace(p.Message + " " + firstLine(p.Text)); msg != "" {
						fmt.Fprintf(&b, "      why: %s\n", msg)
					}
				case c.Skipped != nil:
					fmt.Fprintf(&b, "SKIP  %s › %s\n", s.Name, c.Name)
				default:
					fmt.Fprintf(&b, "PASS  %s › %s\n", s.Name, c.Name)
				}
			}
		}
	}
	if o.SuiteErr != nil {
		fmt.Fprintf(&b, "FAIL  suite: %s\n", oneline.Fold(o.SuiteErr.Error()))
	}
	fmt.Fprintf(&b, "smoke-test: %s in %s\n", o.Summary(), o.Elapsed.Round(time.Millisecond))
	_, err := io.WriteString(w, b.String())
	return err
}

// Masked is a copy of the result with mask applied to every text in it
// (names, URLs, reasons, bodies, the suite's report and error). Reports are
// encoded from it: once JSON or XML has escaped a secret holding & < or ",
// masking the encoded bytes no longer finds it.
func (o Result) Masked(mask func(string) string) Result {
	out := o
	out.Checks = make([]CheckResult, len(o.Checks))
	for i, r := range o.Checks {
		r.Name, r.Method, r.URL = mask(r.Name), mask(r.Method), mask(r.URL)
		r.Failure, r.Body = mask(r.Failure), mask(r.Body)
		r.Tags = maskAll(mask, r.Tags)
		out.Checks[i] = r
	}
	if o.Suite != nil {
		rep := junit.Report{Name: mask(o.Suite.Name), Suites: make([]junit.Suite, len(o.Suite.Suites))}
		for i, s := range o.Suite.Suites {
			ms := junit.Suite{Name: mask(s.Name), Time: s.Time, Cases: make([]junit.Case, len(s.Cases))}
			for j, c := range s.Cases {
				ms.Cases[j] = junit.Case{Name: mask(c.Name), Classname: mask(c.Classname), Time: c.Time,
					Failure: maskProblem(mask, c.Failure), Error: maskProblem(mask, c.Error), Skipped: maskProblem(mask, c.Skipped),
					SystemOut: mask(c.SystemOut)}
			}
			rep.Suites[i] = ms
		}
		out.Suite = &rep
	}
	if o.SuiteErr != nil {
		out.SuiteErr = maskedError{msg: mask(o.SuiteErr.Error()), err: o.SuiteErr}
	}
	return out
}

func maskAll(mask func(string) string, list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = mask(s)
	}
	return out
}

func maskProblem(mask func(string) string, p *junit.Problem) *junit.Problem {
	if p == nil {
		return nil
	}
	return &junit.Problem{Message: mask(p.Message), Type: mask(p.Type), Text: mask(p.Text)}
}

// maskedError reads as its masked message and still unwraps to the error.
type maskedError struct {
	msg string
	err error
}

func (e maskedError) Error() string { return e.msg }
func (e maskedError) Unwrap() error { return e.err }

// JUnit is the result as a JUnit report: a "smoke-test checks" suite for
// the spec's checks, then the external suite's own suites. A suite command
// that failed without a failing test shows as one errored test case.
func (o Result) JUnit() junit.Report {
	rep := junit.Report{Name: "smoke-test"}
	if len(o.Checks) > 0 {
		s := junit.Suite{Name: "smoke-test checks"}
		for _, r := range o.Checks {
			c := junit.Case{Name: r.Name, Classname: "smoke-test", Time: r.Duration.Seconds()}
			detail := fmt.Sprintf("%s %s\nattempts: %d\nlast status: %d\nlatency: %s\n", r.Method, r.URL, r.Attempts, r.Status, roundDuration(r.Latency))
			if r.Passed {
				c.SystemOut = detail
			} else {
				text := detail
				if r.Body != "" {
					text += "body (first 500 bytes):\n" + r.Body + "\n"
				}
				c.Failure = &junit.Problem{Message: r.Failure, Type: "expectation", Text: text}
			}
			s.Time += r.Duration.Seconds()
			s.Cases = append(s.Cases, c)
		}
		rep.Suites = append(rep.Suites, s)
	}
	if o.Suite != nil {
		rep.Suites = append(rep.Suites, o.Suite.Suites...)
	}
	if o.SuiteErr != nil && (o.Suite == nil || len(o.Suite.Failed()) == 0) {
		rep.Suites = append(rep.Suites, junit.Suite{Name: "suite command", Cases: []junit.Case{{
			Name: "suite command", Classname: "smoke-test",
			Error: &junit.Problem{Message: oneline.Fold(o.SuiteErr.Error()), Type: "command"},
		}}})
	}
	return rep
}

// JUnitXML is JUnit() as an XML document.
func (o Result) JUnitXML() ([]byte, error) {
	var buf bytes.Buffer
	if err := junit.Write(&buf, o.JUnit()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type jsonCheck struct {
	Name       string   `json:"name"`
	Method     string   `json:"method"`
	URL        string   `json:"url"`
	Tags       []string `json:"tags,omitempty"`
	Passed     bool     `json:"passed"`
	Attempts   int      `json:"attempts"`
	Status     int      `json:"status"`
	LatencyMS  int64    `json:"latency_ms"`
	DurationMS int64    `json:"duration_ms"`
	Failure    string   `json:"failure,omitempty"`
	Body       string   `json:"body,omitempty"`
}

type jsonTest struct {
	Suite   string `json:"suite"`
	Name    string `json:"name"`
	Passed  bool   `json:"passed"`
	Skipped bool   `json:"skipped,omitempty"`
	Failure string `json:"failure,omitempty"`
}

type jsonResult struct {
	Passed    int         `json:"passed"`
	Failed    int         `json:"failed"`
	Skipped   int         `json:"skipped"`
	Summary   string      `json:"summary"`
	ElapsedMS int64       `json:"elapsed_ms"`
	Checks    []jsonCheck `json:"checks"`
	Tests     []jsonTest  `json:"tests,omitempty"`
	SuiteErr  string      `json:"suite_error,omitempty"`
}

// JSON is the result as one JSON document.
func (o Result) JSON() ([]byte, error) {
	t := o.Tally()
	doc := jsonResult{Passed: t.Passed, Failed: t.Failed, Skipped: t.Skipped, Summary: o.Summary(),
		ElapsedMS: o.Elapsed.Milliseconds(), Checks: []jsonCheck{}}
	for _, r := range o.Checks {
		doc.Checks = append(doc.Checks, jsonCheck{Name: r.Name, Method: r.Method, URL: r.URL, Tags: r.Tags, Passed: r.Passed,
			Attempts: r.Attempts, Status: r.Status, LatencyMS: r.Latency.Milliseconds(), DurationMS: r.Duration.Milliseconds(),
			Failure: r.Failure, Body: r.Body})
	}
	if o.Suite != nil {
		for _, s := range o.Suite.Suites {
			for _, c := range s.Cases {
				jt := jsonTest{Suite: s.Name, Name: c.Name, Passed: !c.Failed() && c.Skipped == nil, Skipped: c.Skipped != nil}
				if p := c.Failure; p != nil {
					jt.Failure = p.Message
				} else if p := c.Error; p != nil {
					jt.Failure = p.Message
				}
				doc.Tests = append(doc.Tests, jt)
			}
		}
	}
	if o.SuiteErr != nil {
		doc.SuiteErr = oneline.Fold(o.SuiteErr.Error())
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode json report: %w", err)
	}
	return append(out, '\n'), nil
}

// writeFile writes data to path whole or not at all, making its folder.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, 0o644)
}

// roundDuration keeps a duration readable: milliseconds, or microseconds
// under one millisecond (loopback answers).
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
