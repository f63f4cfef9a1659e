// Package childproc runs the child processes of every step (migrate's
// command, precompile-assets' build, smoke-test's suite) one way: in a
// process group of their own, output passed on a whole line at a time,
// stopped as a group (SIGTERM, a grace period, then SIGKILL) when the
// context ends, at a timeout or on a signal to this process, and never
// outliving the step. StepError gives its end the step's exit code.
package childproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// signalSettle is how long a cancelled context waits for the signal that
// (usually) cancelled it, so that the child does not get it twice.
const signalSettle = 100 * time.Millisecond

// DefaultWaitDelay is how long Run waits, after the child exited, for output
// pipes a process it left behind still holds open.
const DefaultWaitDelay = 2 * time.Second

// Cmd is a child process to run.
type Cmd struct {
	// Args is the program and its arguments; Args[0] is looked up in PATH.
	Args []string
	// Name says what the child is in logs and errors, e.g. "suite
	// command"; default "command " + Args[0].
	Name string
	// Dir is the working directory; "" is this process's.
	Dir string
	// Stdout and Stderr receive the child's output a whole line at a time
	// (so a redacting writer sees every secret whole); nil discards it.
	Stdout, Stderr io.Writer
	// Timeout stops the child (as the context would) if it runs longer;
	// zero means no limit. TimeoutReason says why, for the log and the
	// error; default "timeout <Timeout> passed".
	Timeout       time.Duration
	TimeoutReason string
	// GracePeriod is how long the child has to exit after SIGTERM (or
	// SIGINT) before its group is killed.
	GracePeriod time.Duration
	// WaitDelay: see DefaultWaitDelay (used when zero).
	WaitDelay time.Duration
	// Log receives "started", "stopping", "killing" and "finished" events;
	// nil discards them.
	Log *slog.Logger
}

// StartError is a child that could not be started (not found, not
// executable): a problem with the input, not a failure of the child.
type StartError struct {
	Name string
	Err  error
}

func (e *StartError) Error() string { return fmt.Sprintf("start %s: %v", e.Name, e.Err) }
func (e *StartError) Unwrap() error { return e.Err }

// ExitError is a child that exited non-zero or was killed by a signal.
type ExitError struct {
	Name string
	// Status is the exit status; -1 when a signal ended the child.
	Status int
	// Signal is the signal that ended the child, if one did.
	Signal syscall.Signal
	Took   time.Duration
	// Stopped is why Run stopped the child (the context's cause, the
	// timeout or a signal to this process); nil if the child ended on its
	// own.
	Stopped error
}

func (e *ExitError) Error() string {
	how := fmt.Sprintf("exited with status %d", e.Status)
	if e.Status < 0 {
		how = "was killed by " + e.Signal.String()
	}
	msg := fmt.Sprintf("%s %s after %s", e.Name, how, e.Took.Round(time.Millisecond))
	if e.Stopped != nil {
		msg += fmt.Sprintf(" (%v)", e.Stopped)
	}
	return msg
}

// Unwrap is why the child was stopped, so that errors.Is finds the
// context's cause (a lost lock, say).
func (e *ExitError) Unwrap() error { return e.Stopped }

// StepError gives what Run returned the exit code of the step that ran the
// child: a child that could not be started is invalid input (exit 2; a
// retry would not find it either), any other failure exit 1.
func StepError(err error) error {
	var se *StartError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return exitcode.AsInvalid(err)
	}
	return exitcode.Failedf("%w", err)
}

// Run runs the child in a process group of its own. SIGTERM and SIGINT sent
// to this process are forwarded to the group; when ctx ends or Timeout
// passes the group gets SIGTERM. If the child has not exited GracePeriod
// after the first signal, the group is killed. Run returns only once the
// child has exited and its group has been killed, so nothing it started
// outlives it; a child that dies because this process was killed gets
// SIGKILL too (Pdeathsig).
//
// ctx is usually cancelled by the very signal Run forwards: so that the
// child does not get that signal twice, a cancelled ctx stops the child only
// if no signal reaches Run within signalSettle. A ctx already done means the
// child never starts.
//
// The error is a *StartError, an *ExitError, or (ctx done before the start)
// one wrapping ctx's cause.
func (c Cmd) Run(ctx context.Context) error {
	if len(c.Args) == 0 {
		return &StartError{Name: c.name(), Err: errors.New("no command given")}
	}
	name := c.name()
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if ctx.Err() != nil {
		return fmt.Errorf("%s not started: %w", name, context.Cause(ctx))
	}

	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Dir = c.Dir
	// Pdeathsig: if this process is killed (SIGKILL, OOM), the child must
	// die too rather than go on unsupervised (migrating without the lock,
	// say). The kernel ties it to the thread that started the child: keep
	// this goroutine on it until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, stderr := newLineWriter(c.Stdout), newLineWriter(c.Stderr)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// output pipes held open by a grandchild must not hold Run up
	cmd.WaitDelay = c.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = DefaultWaitDelay
	}
	if err := cmd.Start(); err != nil {
		return &StartError{Name: name, Err: err}
	}
	defer stdout.flush()
	defer stderr.flush()
	pid := cmd.Process.Pid
	log = log.With("command", c.Args[0], "pid", pid)
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
	var stopped error
	ctxDone := ctx.Done()
	var ctxStop <-chan time.Time
	stop := func(why error, sig syscall.Signal) {
		_ = syscall.Kill(-pid, sig)
		if kill == nil {
			stopped = why
			log.Info("stopping the command", "reason", why.Error(), "signal", sig.String(), "grace_period", c.GracePeriod.String())
			kill = time.After(c.GracePeriod)
		}
	}
	for {
		select {
		case err := <-done:
			// whatever the child left behind in its group goes too
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			return c.result(name, err, stopped, time.Since(start), log)
		case sig := <-sigs:
			s, _ := sig.(syscall.Signal)
			stop(fmt.Errorf("%s received %s", filepath.Base(os.Args[0]), s), s)
		case <-timeout:
			timeout = nil
			reason := c.TimeoutReason
			if reason == "" {
				reason = fmt.Sprintf("timeout %s passed", c.Timeout)
			}
			stop(errors.New(reason), syscall.SIGTERM)
		case <-ctxDone:
			ctxDone = nil
			ctxStop = time.After(signalSettle)
		case <-ctxStop:
			ctxStop = nil
			if kill == nil {
				stop(context.Cause(ctx), syscall.SIGTERM)
			}
		case <-kill:
			log.Info("grace period over: killing the command", "grace_period", c.GracePeriod.String())
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			kill = nil
		}
	}
}

func (c Cmd) name() string {
	if c.Name != "" {
		return c.Name
	}
	if len(c.Args) == 0 {
		return "command"
	}
	return "command " + c.Args[0]
}

func (c Cmd) result(name string, err error, stopped error, took time.Duration, log *slog.Logger) error {
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
		return fmt.Errorf("%s: %w", name, err)
	}
	xe := &ExitError{Name: name, Status: ee.ExitCode(), Took: took, Stopped: stopped}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		xe.Status, xe.Signal = -1, ws.Signal()
	}
	return xe
}
