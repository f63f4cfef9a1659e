// Package serverproc runs a server process for a test (etcd, the apiserver,
// Argo's controller and agent, the promoter): its output goes to a
// log file, the kernel kills it if the test binary dies, and it is stopped
// (SIGTERM, then SIGKILL after a grace period) when the test ends, its log's
// end shown if the test failed.
package serverproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// DefaultGrace is how long a process gets between SIGTERM and SIGKILL.
const DefaultGrace = 20 * time.Second

// Spec is what to run.
type Spec struct {
	Name string   // names the log file and the process in errors
	Path string   // the executable
	Args []string // arguments after the executable
	// Env is the whole environment; nil inherits the test's.
	Env []string
	// LogDir holds NAME.log.
	LogDir string
	// Grace is how long Stop waits after SIGTERM before SIGKILL
	// (DefaultGrace if zero).
	Grace time.Duration
}

// Process is a running child.
type Process struct {
	Name    string
	LogPath string
	Started time.Time
	cmd     *exec.Cmd
	grace   time.Duration
	done    chan struct{} // closed once the process has exited
	err     error         // its exit, valid after done
	stop    sync.Once
	asked   atomic.Bool // Stop was called
	stopped time.Duration
	stopErr error
}

// Start runs spec and stops it when t ends; if t failed, the end of the
// process's log is logged.
func Start(t testing.TB, spec Spec) *Process {
	t.Helper()
	p, err := Run(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := p.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("last lines of %s's log:\n%s", p.Name, p.Tail(40))
		}
	})
	return p
}

// Run runs spec; the caller stops it.
func Run(spec Spec) (*Process, error) {
	logPath := filepath.Join(spec.LogDir, spec.Name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	p := &Process{Name: spec.Name, LogPath: logPath, Started: time.Now(), cmd: cmd, grace: spec.Grace, done: make(chan struct{})}
	if p.grace <= 0 {
		p.grace = DefaultGrace
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process exited (nil: status 0); valid after Done.
func (p *Process) Err() error { return p.err }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM, then SIGKILL after the grace period, and reports how
// long the process took to go. Only the first call stops; later ones report its result.
func (p *Process) Stop() (time.Duration, error) {
	p.asked.Store(true)
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		begin := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("stop %s: %w", p.Name, err)
			return
		}
		select {
		case <-p.done:
		case <-time.After(p.grace):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("stop %s: still running %s after SIGTERM, killed", p.Name, p.grace)
		}
		p.stopped = time.Since(begin)
	})
	return p.stopped, p.stopErr
}

// Stopping reports whether Stop was called (an exit is then expected).
func (p *Process) Stopping() bool { return p.asked.Load() }

// Exited describes an exit with the last line the process logged.
func (p *Process) Exited() error {
	return fmt.Errorf("%s exited (%v): %s", p.Name, p.err, p.Tail(1))
}

// Tail returns the last n non-empty lines of the process's log.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "no log: " + err.Error()
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// WaitOK polls url with client until it answers 200, the process exits or
// ctx ends. header, if not nil, is sent with every request.
func (p *Process) WaitOK(ctx context.Context, client *http.Client, url string, header http.Header) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		code, err := status(ctx, client, url, header)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "status " + strconv.Itoa(code)
		}
		select {
		case <-p.done:
			return p.Exited()
		case <-ctx.Done():
			return fmt.Errorf("wait for %s %s: %w (last: %s)", p.Name, url, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func status(ctx context.Context, client *http.Client, url string, header http.Header) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		// The error names the URL, never a header (it may carry a token).
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
