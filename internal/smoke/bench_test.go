package smoke

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// slowApp answers every request after 100 ms, like a page that renders in 100 ms.
func slowApp(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		w.Write([]byte("<html>ok</html>"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchChecks(b *testing.B, base string, n int) string {
	var spec strings.Builder
	spec.WriteString("checks:\n")
	for i := range n {
		fmt.Fprintf(&spec, "  - path: /page/%d\n    expect: {body_contains: ok}\n", i)
	}
	return spec.String()
}

func benchRun(b *testing.B, concurrency int) {
	srv := slowApp(b)
	checks := parseChecks(b, srv.URL, benchChecks(b, srv.URL, 200))
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range Run(context.Background(), checks, Config{Concurrency: concurrency}) {
			if !r.Passed {
				b.Fatalf("%s: %s", r.Name, r.Failure)
			}
		}
	}
}

// BenchmarkRun200Checks: 200 checks against a loopback app answering each in
// 100 ms, at the default concurrency (16).
func BenchmarkRun200Checks(b *testing.B) { benchRun(b, DefaultConcurrency) }

// BenchmarkRun200ChecksSerial is the same run one check at a time: the
// baseline the concurrency is measured against (about 20 s).
func BenchmarkRun200ChecksSerial(b *testing.B) { benchRun(b, 1) }
