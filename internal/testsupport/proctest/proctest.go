// Package proctest runs a step as a process of its own, for tests that
// signal it or watch it while it runs: its output is readable as it comes,
// waiting for it is bounded, and it never outlives the test.
package proctest

import (
	"os/exec"
	"testing"
	"time"

	"github.com/slipway-deploy/slipway/internal/testsupport/syncbuffer"
)

// Proc is a started process.
type Proc struct {
	Cmd *exec.Cmd
	// Out holds its stdout and stderr.
	Out  *syncbuffer.Buffer
	done chan struct{}
	code int
}

// Start starts cmd with its stdout and stderr into Out. If it is still
// running when t ends, it is killed.
func Start(t testing.TB, cmd *exec.Cmd) (*Proc, error) {
	t.Helper()
	p := &Proc{Cmd: cmd, Out: &syncbuffer.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p, nil
}

// Kill kills the process if it still runs, and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.done:
	default:
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Wait waits at most limit for the process to exit and returns its exit
// code (-1 when a signal ended it) and output. Past limit it is killed and
// the test fails.
func (p *Proc) Wait(t testing.TB, limit time.Duration) (int, string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.Kill()
		t.Fatalf("%s did not exit within %s; output:\n%s", p.Cmd.Path, limit, p.Out.String())
	}
	return p.code, p.Out.String()
}
