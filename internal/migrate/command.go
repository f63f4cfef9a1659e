// Package migrate is the migrate step. Run waits for the database, takes
// the lock of package dblock and runs the app's migrations under it: a
// command (rails db:migrate, say) with its signals forwarded and a
// deadline, or a folder of NNNN_name.up.sql files through golang-migrate;
// either stops when the lock is lost. Its Result says what was applied.
// Lint (`migrate lint`) runs package sqllint over the pending files.
package migrate

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/slipway-deploy/slipway/internal/childproc"
	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// Command is a migration command to run.
type Command struct {
	Args []string
	// Stdout and Stderr receive the command's output a whole line at a
	// time (so a redacting writer sees every secret whole).
	Stdout, Stderr io.Writer
	// Timeout stops the command (SIGTERM, then SIGKILL after
	// GracePeriod) if it runs longer; zero means no limit.
	Timeout time.Duration
	// TimeoutReason says why the command is stopped at Timeout.
	TimeoutReason string
	// GracePeriod is how long the command has to exit after SIGTERM or
	// SIGINT before it is killed.
	GracePeriod time.Duration
	Log         *slog.Logger
}

// Run runs the command with package childproc, with migrate's environment:
// in a process group of its own, SIGTERM and SIGINT forwarded, stopped as a
// group when ctx ends (a lost lock, say) or at Timeout. A non-zero exit, a
// signal or a stop is an exit-1 error (wrapping why it was stopped); a
// command that cannot be started is an exit-2 error.
func (c Command) Run(ctx context.Context) error {
	if len(c.Args) == 0 {
		return exitcode.Invalidf("no command given: put it after --, e.g. migrate --database-url ... -- bin/rails db:migrate")
	}
	return childproc.StepError(childproc.Cmd{Args: c.Args, Stdout: c.Stdout, Stderr: c.Stderr, Timeout: c.Timeout,
		TimeoutReason: c.TimeoutReason, GracePeriod: c.GracePeriod, Log: c.Log}.Run(ctx))
}
