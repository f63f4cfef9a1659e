package main

import (
	"fmt"
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
// each in 100 ms, at the default concurrency. These benchmarks run the built
// binary (so the memory figure is the whole process's peak RSS) and, as the
// peer, the shell way it replaces: curl under xargs -P 16.

const benchChecks = 200

func benchServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		w.Write([]byte("<html>ok</html>"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func BenchmarkBinary200Checks(b *testing.B) {
	srv := benchServer(b)
	dir := b.TempDir()
	bin := filepath.Join(dir, "smoke-test")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var spec strings.Builder
	spec.WriteString("checks:\n")
	for i := range benchChecks {
		fmt.Fprintf(&spec, "  - path: /page/%d\n    expect: {body_contains: ok}\n", i)
	}
	specFile := filepath.Join(dir, "checks.yaml")
	if err := os.WriteFile(specFile, []byte(spec.String()), 0o644); err != nil {
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

func BenchmarkCurlXargs200Checks(b *testing.B) {
	if _, err := exec.LookPath("curl"); err != nil {
		b.Skip("curl is not installed")
	}
	srv := benchServer(b)
	script := fmt.Sprintf(`seq 0 %d | xargs -P 16 -I{} curl -fsS -o /dev/null %s/page/{}`, benchChecks-1, srv.URL)
	for b.Loop() {
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			b.Fatalf("curl: %v\n%s", err, out)
		}
	}
}
