package junit

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// playwrightReport is the shape Playwright's junit reporter writes.
const playwrightReport = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites id="" name="" tests="3" failures="1" skipped="1" errors="0" time="4.2">
<testsuite name="frontend.spec.ts" timestamp="2026-11-25T10:00:00.000Z" hostname="chromium" tests="3" failures="1" skipped="1" time="4.1" errors="0">
<testcase name="home page @app-frontend" classname="frontend.spec.ts" time="1.5">
</testcase>
<testcase name="search works @app-frontend" classname="frontend.spec.ts" time="2.5">
<failure message="frontend.spec.ts:12:3 search works" type="FAILURE">
<![CDATA[  expect(received).toContain(expected)]]>
</failure>
<system-out>
<![CDATA[log line]]>
</system-out>
</testcase>
<testcase name="admin @not-production" classname="frontend.spec.ts" time="0">
<skipped>
</skipped>
</testcase>
</testsuite>
</testsuites>`

func TestRead(t *testing.T) {
	tests := []struct {
		name       string
		doc        string
		want       Counts
		failed     []string
		suiteNames []string
		wantErr    string
	}{
		{name: "playwright", doc: playwrightReport, want: Counts{Tests: 3, Failures: 1, Skipped: 1},
			failed: []string{"search works @app-frontend"}, suiteNames: []string{"frontend.spec.ts"}},
		{name: "single testsuite root",
			doc:  `<testsuite name="s"><testcase name="a"/><testcase name="b"><error message="boom"/></testcase></testsuite>`,
			want: Counts{Tests: 2, Errors: 1}, failed: []string{"b"}, suiteNames: []string{"s"}},
		{name: "nested suites",
			doc:  `<testsuites><testsuite name="features"><testsuite name="login"><testcase name="ok"/></testsuite><testsuite name="search"><testcase name="bad"><failure>no</failure></testcase></testsuite></testsuite></testsuites>`,
			want: Counts{Tests: 2, Failures: 1}, failed: []string{"bad"}, suiteNames: []string{"features / login", "features / search"}},
		{name: "odd time attributes", doc: `<testsuite name="s" time="1,234.5"><testcase name="a" time="x"/></testsuite>`,
			want: Counts{Tests: 1}, suiteNames: []string{"s"}},
		{name: "not junit", doc: `<html><body/></html>`, wantErr: "not a JUnit report"},
		{name: "empty", doc: ``, wantErr: "empty document"},
		{name: "broken xml", doc: `<testsuites><testsuite name="a">`, wantErr: "read junit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Read(strings.NewReader(tt.doc))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, rep.Count())
			var names []string
			for _, c := range rep.Failed() {
				names = append(names, c.Name)
			}
			assert.Equal(t, tt.failed, names)
			var suites []string
			for _, s := range rep.Suites {
				suites = append(suites, s.Name)
			}
			assert.Equal(t, tt.suiteNames, suites)
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	rep := Report{Name: "smoke-test", Suites: []Suite{
		{Name: "checks", Time: 1.25, Cases: []Case{
			{Name: "home", Classname: "smoke", Time: 0.5, SystemOut: "attempts: 1"},
			{Name: "search <&>", Classname: "smoke", Time: 0.75,
				Failure: &Problem{Message: "status: expected 2xx, got 502", Type: "expectation", Text: "body: <html>\x00bad gateway"}},
			{Name: "admin", Skipped: &Problem{Message: "skipped"}},
		}},
		{Name: "suite", Cases: []Case{{Name: "e", Error: &Problem{Message: "crash"}}}},
	}}
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, rep))
	assert.Contains(t, buf.String(), `<testsuites name="smoke-test" tests="4" failures="1" errors="1" skipped="1" time="1.250">`)
	assert.Contains(t, buf.String(), `<testsuite name="checks" tests="3" failures="1" errors="0" skipped="1" time="1.250">`)

	back, err := Read(&buf)
	require.NoError(t, err)
	assert.Equal(t, rep.Count(), back.Count())
	assert.Equal(t, Counts{Tests: 4, Failures: 1, Errors: 1, Skipped: 1}, back.Count())
	assert.Equal(t, 1, back.Count().Passed())
	require.Len(t, back.Suites, 2)
	assert.Equal(t, "search <&>", back.Suites[0].Cases[1].Name)
	assert.Equal(t, "status: expected 2xx, got 502", back.Suites[0].Cases[1].Failure.Message)
	assert.Equal(t, "body: <html>\uFFFDbad gateway", back.Suites[0].Cases[1].Failure.Text)
	assert.Equal(t, 0.75, back.Suites[0].Cases[1].Time)
}

func FuzzRead(f *testing.F) {
	f.Add(playwrightReport)
	f.Add(`<testsuite name="s"><testcase name="a"><failure message="m">t</failure></testcase></testsuite>`)
	f.Add(`<testsuites><testsuite><testsuite><testcase/></testsuite></testsuite></testsuites>`)
	f.Add(`<?xml version="1.0"?><!-- c --><testsuites tests="x"/>`)
	f.Fuzz(func(t *testing.T, doc string) {
		rep, err := Read(strings.NewReader(doc))
		if err != nil {
			return
		}
		// whatever was read writes out and reads back with the same counts
		var buf bytes.Buffer
		if err := Write(&buf, rep); err != nil {
			t.Fatalf("write: %v", err)
		}
		back, err := Read(&buf)
		if err != nil {
			t.Fatalf("read back: %v\n%s", err, buf.String())
		}
		if back.Count() != rep.Count() {
			t.Fatalf("counts %+v then %+v", rep.Count(), back.Count())
		}
	})
}
