package smoke

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The speed target of issue 4: 200 checks against a loopback app answering
// each in 100 ms, at the default concurrency. Measured in-process, serially
// (the baseline), as the built smoke-test binary (whose peak RSS is the
// memory figure), and, as the peer, the shell way it replaces: curl under
// xargs -P 16.

const benchChecks = 200

// slowApp answers every request after 100 ms, like a page that renders in 100 ms.
func slowApp(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		w.Write([]byte("<html>ok</html>"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchSpec() string {
	var spec strings.Builder
	spec.WriteString("checks:\n")
	for i := range benchChecks {
		fmt.Fprintf(&spec, "  - path: /page/%d\n    expect: {body_contains: ok}\n", i)
	}
	return spec.String()
}

func benchRun(b *testing.B, concurrency int) {
	srv := slowApp(b)
	checks := parseChecks(b, srv.URL, benchSpec())
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range RunChecks(context.Background(), checks, CheckOptions{Concurrency: concurrency}) {
			if !r.Passed {
				b.Fatalf("%s: %s", r.Name, r.Failure)
			}
		}
	}
}

// BenchmarkRun200Checks runs in-process at the default concurrency (16).
func BenchmarkRun200Checks(b *testing.B) { benchRun(b, DefaultConcurrency) }

// BenchmarkRun200ChecksSerial is the same run one check at a time: the
// baseline the concurrency is measured against (about 20 s).
func BenchmarkRun200ChecksSerial(b *testing.B) { benchRun(b, 1) }

// BenchmarkBinary200Checks runs the built binary and reports its peak RSS.
func BenchmarkBinary200Checks(b *testing.B) {
	srv := slowApp(b)
	dir := b.TempDir()
	bin := filepath.Join(dir, "smoke-test")
	if out, err := exec.Command("go", "build", "-o", bin, "../../steps/smoke-test").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	specFile := filepath.Join(dir, "checks.yaml")
	if err := os.WriteFile(specFile, []byte(benchSpec()), 0o644); err != nil {
		b.Fatal(err)
	}
	var peakKiB int64
	for b.Loop() {
		cmd := exec.Command(bin, "--spec", specFile, "--base-url", srv.URL, "--log-format", "json")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("smoke-test: %v\n%s", err, out)
		}
		peakKiB = max(peakKiB, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	}
	b.ReportMetric(float64(peakKiB)/1024, "peak-RSS-MiB")
}

// BenchmarkCurlXargs200Checks is the peer: the same requests by curl, 16 at a time.
func BenchmarkCurlXargs200Checks(b *testing.B) {
	if _, err := exec.LookPath("curl"); err != nil {
		b.Skip("curl is not installed")
	}
	srv := slowApp(b)
	script := fmt.Sprintf(`seq 0 %d | xargs -P 16 -I{} curl -fsS -o /dev/null %s/page/{}`, benchChecks-1, srv.URL)
	for b.Loop() {
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			b.Fatalf("curl: %v\n%s", err, out)
		}
	}
}

// Timing claims the tests no longer make (they decide on events): how far
// past its deadline a run of failing checks returns, and how long a
// suite takes to stop once its context ends.

// BenchmarkDeadlineOvershoot runs a check that always fails against a 200 ms
// deadline and reports the latest a run returned, in ms past the deadline.
func BenchmarkDeadlineOvershoot(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	b.Cleanup(srv.Close)
	checks := parseChecks(b, srv.URL, "checks:\n  - path: /\n")
	const deadline = 200 * time.Millisecond
	worst := -deadline // negative: returned before the deadline
	for b.Loop() {
		start := time.Now()
		RunChecks(context.Background(), checks, CheckOptions{Deadline: deadline, Backoff: Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}})
		worst = max(worst, time.Since(start)-deadline)
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms-past-deadline")
}

// BenchmarkCommandStop reports how long RunCommand takes to return once its
// context is cancelled, for a suite with a background child.
func BenchmarkCommandStop(b *testing.B) {
	dir := b.TempDir()
	var worst time.Duration
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		var stopAt time.Time
		stdout := &callOnWrite{word: "running", fn: func() { stopAt = time.Now(); cancel() }}
		RunCommand(ctx, Command{Command: "sleep 300 & echo running; wait", JUnitInput: filepath.Join(dir, "r.xml"),
			Stdout: stdout, Stderr: io.Discard})
		worst = max(worst, time.Since(stopAt))
		cancel()
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms-to-stop")
}
