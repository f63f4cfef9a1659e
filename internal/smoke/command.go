package smoke

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/slipway-deploy/slipway/internal/childproc"
	"github.com/slipway-deploy/slipway/internal/junit"
)

// Command is an external test suite: a shell command that writes a JUnit
// report (Playwright's junit reporter, Cucumber's junit formatter, ...).
type Command struct {
	Command    string    // run with sh -c
	JUnitInput string    // the report the command writes
	Dir        string    // working directory; "" is the current one
	Stdout     io.Writer // the command's output is streamed here as it comes
	Stderr     io.Writer
	// StopGrace is how long the command has to exit after SIGTERM when ctx
	// ends before its process group is killed; 0 is 10s.
	StopGrace time.Duration
}

// ErrNoReport is returned when the command left no fresh JUnit report.
var ErrNoReport = errors.New("no JUnit report")

// RunCommand runs the suite, then reads its JUnit report. The error is set
// when the command exited non-zero or left no readable, fresh report; the
// report is returned whenever it could be read, so its failures can still be
// shown.
func RunCommand(ctx context.Context, c Command) (*junit.Report, error) {
	before, statErr := os.Stat(c.JUnitInput)
	grace := c.StopGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	// its own process group, so that stopping it stops the whole suite
	// (npx, the browsers it starts, ...); output a whole line at a time
	runErr := childproc.Cmd{Args: []string{"sh", "-c", c.Command}, Name: "suite command", Dir: c.Dir,
		Stdout: c.Stdout, Stderr: c.Stderr, GracePeriod: grace}.Run(ctx)
	if runErr != nil {
		var exit *childproc.ExitError
		switch {
		case ctx.Err() != nil:
			runErr = fmt.Errorf("suite command stopped: %w", context.Cause(ctx))
		case errors.As(runErr, &exit) && exit.Status >= 0:
			runErr = fmt.Errorf("suite command exited with status %d", exit.Status)
		}
	}
	rep, readErr := readFresh(c.JUnitInput, before, statErr == nil)
	return rep, errors.Join(runErr, readErr)
}

// readFresh reads the report, refusing one the command did not write (left
// over from an earlier run, which could pass a broken release).
func readFresh(path string, before os.FileInfo, existed bool) (*junit.Report, error) {
	after, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s was not written by the suite command: %v", ErrNoReport, path, err)
	}
	if existed && after.ModTime().Equal(before.ModTime()) && after.Size() == before.Size() {
		return nil, fmt.Errorf("%w: %s is left from an earlier run (the suite command did not rewrite it)", ErrNoReport, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoReport, err)
	}
	defer f.Close()
	rep, err := junit.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoReport, path, err)
	}
	return &rep, nil
}
