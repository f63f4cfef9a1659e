// Package migrate runs an app's migrations: a command (rails db:migrate, say)
// with its signals forwarded and a deadline, or a folder of NNNN_name.up.sql
// files through golang-migrate. Taking the lock around either is the
// caller's job (package dblock).
package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// signalSettle is how long a cancelled context waits for the signal that
// (usually) cancelled it.
const signalSettle = 100 * time.Millisecond

// Command is a migration command to run.
type Command struct {
	Args []string
	// Stdout and Stderr receive the command's output a whole line at a
	// time (so a redacting writer sees every secret whole).
	Stdout, Stderr io.Writer
	// Timeout stops the command (SIGTERM, then SIGKILL after
	// GracePeriod) if it runs longer; zero means no limit.
	Timeout time.Duration
	// TimeoutReason says why the command is stopped at Timeout, for
	// logs and the error; default "--timeout passed".
	TimeoutReason string
	// GracePeriod is how long the command has to exit after SIGTERM or
	// SIGINT before it is killed.
	GracePeriod time.Duration
	Log         *slog.Logger
}

// Run runs the command in a process group of its own, with migrate's
// environment. SIGTERM and SIGINT sent to this process are forwarded to the
// group; if the command has not exited GracePeriod later the group is
// killed. Run returns only once the command has exited and its process group
// has been killed, so nothing it started outlives the lock. A non-zero exit,
// a signal or the timeout is an exit-1 error; a command that cannot be
// started is an exit-2 error.
//
// ctx is usually cancelled by the very signal Run forwards. So that the
// command does not get that signal twice, a cancelled ctx stops the command
// (SIGTERM) only if no signal reaches Run within signalSettle; and a ctx
// already cancelled before the start means the command never starts.
func (c Command) Run(ctx context.Context) error {
	if len(c.Args) == 0 {
		return exitcode.Invalidf("no command given: put it after --, e.g. migrate --database-url ... -- bin/rails db:migrate")
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if ctx.Err() != nil {
		return exitcode.Failedf("command %s not started: %w", c.Args[0], context.Cause(ctx))
	}

	name := c.Args[0]
	cmd := exec.Command(name, c.Args[1:]...)
	// Pdeathsig: if migrate itself is killed (SIGKILL, OOM), the server
	// drops the lock with the connection, so the command must die too
	// rather than go on migrating unlocked. The kernel ties it to the
	// thread that started the command: keep this goroutine on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, stderr := newLineWriter(c.Stdout), newLineWriter(c.Stderr)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// output pipes held open by a grandchild must not hold Run up
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return exitcode.Invalidf("start command %s: %w", name, err)
	}
	defer stdout.flush()
	defer stderr.flush()
	pid := cmd.Process.Pid
	log := c.Log.With("command", name, "pid", pid)
	log.Info("command started")
	start := time.Now()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var timeout <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var kill <-chan time.Time
	var stopReason string
	ctxDone := ctx.Done()
	var ctxStop <-chan time.Time
	stopping := func(reason string, sig syscall.Signal) {
		_ = syscall.Kill(-pid, sig)
		if kill == nil {
			stopReason = reason
			log.Info("stopping the command", "reason", reason, "signal", sig.String(), "grace_period", c.GracePeriod.String())
			kill = time.After(c.GracePeriod)
		}
	}
	for {
		select {
		case err := <-done:
			// whatever the command left behind in its group goes too
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			return c.result(name, err, stopReason, time.Since(start), log)
		case sig := <-sigs:
			s, _ := sig.(syscall.Signal)
			stopping("migrate received "+s.String(), s)
		case <-timeout:
			timeout = nil
			reason := c.TimeoutReason
			if reason == "" {
				reason = fmt.Sprintf("--timeout %s passed", c.Timeout)
			}
			stopping(reason, syscall.SIGTERM)
		case <-ctxDone:
			ctxDone = nil
			ctxStop = time.After(signalSettle)
		case <-ctxStop:
			ctxStop = nil
			if kill == nil {
				stopping(fmt.Sprintf("stopped: %v", context.Cause(ctx)), syscall.SIGTERM)
			}
		case <-kill:
			log.Info("grace period over: killing the command", "grace_period", c.GracePeriod.String())
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			kill = nil
		}
	}
}

func (c Command) result(name string, err error, stopReason string, took time.Duration, log *slog.Logger) error {
	took = took.Round(time.Millisecond)
	if err == nil {
		log.Info("command finished", "duration", took.String())
		return nil
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		log.Info("command finished; its output stayed open in a process it left behind", "duration", took.String())
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("command %s: %w", name, err)
	}
	how := fmt.Sprintf("exited with status %d", ee.ExitCode())
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		how = "was killed by " + ws.Signal().String()
	}
	if stopReason != "" {
		return exitcode.Failedf("command %s %s after %s (%s)", name, how, took, stopReason)
	}
	return exitcode.Failedf("command %s %s after %s", name, how, took)
}

// lineWriter passes output on one whole line per Write; a line longer than
// 64 KiB is passed on in pieces.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func newLineWriter(w io.Writer) *lineWriter {
	if w == nil {
		w = io.Discard
	}
	return &lineWriter{w: w}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		if err := l.emit(l.buf[:i+1]); err != nil {
			return 0, err
		}
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	if len(l.buf) > 64<<10 {
		if err := l.emit(l.buf); err != nil {
			return 0, err
		}
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

// emit writes each line of b with its own Write.
func (l *lineWriter) emit(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		if _, err := l.w.Write(line); err != nil {
			return err
		}
		b = b[len(line):]
	}
	return nil
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		if !bytes.HasSuffix(l.buf, []byte("\n")) {
			l.buf = append(l.buf, '\n')
		}
		_ = l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}
