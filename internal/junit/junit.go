// Package junit reads and writes JUnit XML test reports, the format
// Playwright, Cucumber and most test runners write and the Argo workflow
// UI's users already know. Read accepts the common shapes (a <testsuites>
// root, a single <testsuite> root, nested suites); Write emits one
// <testsuites> document whose counts always match its test cases.
package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Report is a whole JUnit document: a list of suites.
type Report struct {
	Name   string
	Suites []Suite
}

// Suite is one <testsuite>.
type Suite struct {
	Name  string
	Time  float64 // seconds
	Cases []Case
}

// Case is one <testcase>. At most one of Failure, Error and Skipped is set
// by Read; a case with none of them passed.
type Case struct {
	Name      string
	Classname string
	Time      float64 // seconds
	Failure   *Problem
	Error     *Problem
	Skipped   *Problem
	SystemOut string
}

// Problem is the content of a <failure>, <error> or <skipped> element.
type Problem struct {
	Message string
	Type    string
	Text    string
}

// Failed reports whether the case failed or errored.
func (c Case) Failed() bool { return c.Failure != nil || c.Error != nil }

// Counts is the tally of a report or a suite.
type Counts struct {
	Tests, Failures, Errors, Skipped int
}

// Passed is the number of cases that neither failed, errored nor were skipped.
func (c Counts) Passed() int { return c.Tests - c.Failures - c.Errors - c.Skipped }

// Count tallies the cases of one suite.
func (s Suite) Count() Counts {
	var n Counts
	for _, c := range s.Cases {
		n.Tests++
		switch {
		case c.Failure != nil:
			n.Failures++
		case c.Error != nil:
			n.Errors++
		case c.Skipped != nil:
			n.Skipped++
		}
	}
	return n
}

// Count tallies every case of the report.
func (r Report) Count() Counts {
	var n Counts
	for _, s := range r.Suites {
		c := s.Count()
		n.Tests += c.Tests
		n.Failures += c.Failures
		n.Errors += c.Errors
		n.Skipped += c.Skipped
	}
	return n
}

// Failed returns the cases that failed or errored, in document order.
func (r Report) Failed() []Case {
	var out []Case
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			if c.Failed() {
				out = append(out, c)
			}
		}
	}
	return out
}

// xml shapes: attributes are read as strings so that a runner writing
// time="1,234.5" or an empty count does not make the whole report unreadable.
type xmlSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr,omitempty"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Skipped  int        `xml:"skipped,attr"`
	Time     string     `xml:"time,attr,omitempty"`
	Suites   []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name     string     `xml:"name,attr"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Skipped  int        `xml:"skipped,attr"`
	Time     string     `xml:"time,attr,omitempty"`
	Cases    []xmlCase  `xml:"testcase"`
	Suites   []xmlSuite `xml:"testsuite"`
}

type xmlCase struct {
	Name      string      `xml:"name,attr"`
	Classname string      `xml:"classname,attr,omitempty"`
	Time      string      `xml:"time,attr,omitempty"`
	Failure   *xmlProblem `xml:"failure"`
	Error     *xmlProblem `xml:"error"`
	Skipped   *xmlProblem `xml:"skipped"`
	SystemOut string      `xml:"system-out,omitempty"`
}

type xmlProblem struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// ErrNotJUnit is returned when the document is XML but not a JUnit report.
var ErrNotJUnit = errors.New("not a JUnit report (root element is neither <testsuites> nor <testsuite>)")

// Read parses a JUnit report.
func Read(r io.Reader) (Report, error) {
	dec := xml.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Report{}, fmt.Errorf("read junit: empty document")
			}
			return Report{}, fmt.Errorf("read junit: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch start.Name.Local {
		case "testsuites":
			var doc xmlSuites
			if err := dec.DecodeElement(&doc, &start); err != nil {
				return Report{}, fmt.Errorf("read junit: %w", err)
			}
			rep := Report{Name: doc.Name}
			for _, s := range doc.Suites {
				rep.Suites = appendSuite(rep.Suites, s, "")
			}
			return rep, nil
		case "testsuite":
			var s xmlSuite
			if err := dec.DecodeElement(&s, &start); err != nil {
				return Report{}, fmt.Errorf("read junit: %w", err)
			}
			return Report{Suites: appendSuite(nil, s, "")}, nil
		default:
			return Report{}, fmt.Errorf("read junit: %w: <%s>", ErrNotJUnit, start.Name.Local)
		}
	}
}

// appendSuite flattens nested suites, naming a child "parent / child".
func appendSuite(out []Suite, s xmlSuite, parent string) []Suite {
	name := s.Name
	if parent != "" {
		name = parent + " / " + name
	}
	suite := Suite{Name: name, Time: seconds(s.Time)}
	for _, c := range s.Cases {
		suite.Cases = append(suite.Cases, Case{
			Name:      c.Name,
			Classname: c.Classname,
			Time:      seconds(c.Time),
			Failure:   problem(c.Failure),
			Error:     problem(c.Error),
			Skipped:   problem(c.Skipped),
			SystemOut: c.SystemOut,
		})
	}
	if len(suite.Cases) > 0 || len(s.Suites) == 0 {
		out = append(out, suite)
	}
	for _, child := range s.Suites {
		out = appendSuite(out, child, name)
	}
	return out
}

func problem(p *xmlProblem) *Problem {
	if p == nil {
		return nil
	}
	return &Problem{Message: p.Message, Type: p.Type, Text: strings.TrimSpace(p.Text)}
}

func seconds(s string) float64 {
	f, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), 64)
	if err != nil || f < 0 {
		return 0
	}
	return f
}

// Write writes the report as one <testsuites> document. The tests,
// failures, errors and skipped attributes are computed from the cases.
func Write(w io.Writer, r Report) error {
	doc := xmlSuites{Name: r.Name}
	total := r.Count()
	doc.Tests, doc.Failures, doc.Errors, doc.Skipped = total.Tests, total.Failures, total.Errors, total.Skipped
	var totalTime float64
	for _, s := range r.Suites {
		n := s.Count()
		xs := xmlSuite{Name: s.Name, Tests: n.Tests, Failures: n.Failures, Errors: n.Errors, Skipped: n.Skipped, Time: formatSeconds(s.Time)}
		totalTime += s.Time
		for _, c := range s.Cases {
			xs.Cases = append(xs.Cases, xmlCase{
				Name:      c.Name,
				Classname: c.Classname,
				Time:      formatSeconds(c.Time),
				Failure:   toXML(c.Failure),
				Error:     toXML(c.Error),
				Skipped:   toXML(c.Skipped),
				SystemOut: c.SystemOut,
			})
		}
		doc.Suites = append(doc.Suites, xs)
	}
	doc.Time = formatSeconds(totalTime)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

func toXML(p *Problem) *xmlProblem {
	if p == nil {
		return nil
	}
	return &xmlProblem{Message: p.Message, Type: p.Type, Text: p.Text}
}

func formatSeconds(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
