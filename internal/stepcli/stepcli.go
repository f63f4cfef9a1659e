// Package stepcli is the part every step binary shares: the SLIPWAY_* twin of
// each flag, the --log-format flag, the redacted stdout/stderr, the check
// that --outputs-dir is writable before a step runs, and turning
// the error a step returns into one clear line and the exit code of
// DESIGN.md section 4. A step's main.go declares its own flags and calls Run.
package stepcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/logging"
	"github.com/slipway-deploy/slipway/internal/outputs"
	"github.com/slipway-deploy/slipway/internal/redact"
)

// Env returns the environment twin of a flag: "dry-run" -> SLIPWAY_DRY_RUN.
func Env(flag string) []string {
	return []string{"SLIPWAY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

// Step is what a step binary's main.go hands to Run.
type Step struct {
	Name  string
	Usage string
	// UsageText is the synopsis shown by --help.
	UsageText   string
	Description string
	Flags       []cli.Flag
	Commands    []*cli.Command
	// Action runs the step. Runtime carries the logger, the redactor and the
	// redacted stdout; the context is cancelled on SIGINT/SIGTERM.
	Action func(ctx context.Context, c *cli.Context, rt *Runtime) error
}

// OutputsDirFlag is the flag of every step that writes Argo outputs; Main
// checks that the folder is writable before the step runs.
const OutputsDirFlag = "outputs-dir"

// Runtime is what an Action gets besides its flags.
type Runtime struct {
	Log      *slog.Logger
	Redactor *redact.Redactor
	// Stdout is redacted; print results (diffs, summaries) here.
	Stdout io.Writer
}

// CommonFlags are on every step.
func CommonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Value: logging.FormatAuto, EnvVars: Env("log-format"),
			Usage: "log format: auto (text on a terminal, JSON otherwise), text or json"},
		&cli.BoolFlag{Name: "debug", EnvVars: Env("debug"), Usage: "log debug events too"},
	}
}

// Run runs the step with os.Args and exits the process with its exit code.
func Run(s Step) {
	os.Exit(Main(s, os.Args, os.Stdout, os.Stderr))
}

// Main runs the step and returns the exit code; tests call it directly.
func Main(s Step, args []string, stdout, stderr io.Writer) int {
	red := &redact.Redactor{}
	out := red.Writer(stdout)
	errw := red.Writer(stderr)

	app := &cli.App{
		Name:                 s.Name,
		Usage:                s.Usage,
		UsageText:            s.UsageText,
		Description:          s.Description,
		Flags:                append(append([]cli.Flag{}, s.Flags...), CommonFlags()...),
		Commands:             s.Commands,
		Writer:               out,
		ErrWriter:            errw,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		// Errors are printed once, below, with the right exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return exitcode.AsInvalid(err)
		},
	}
	if s.Action != nil {
		app.Action = func(c *cli.Context) error {
			level := slog.LevelInfo
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			logger, err := logging.New(stderrFile(stderr, errw), c.String("log-format"), level, red)
			if err != nil {
				return exitcode.AsInvalid(err)
			}
			// Every step that writes Argo outputs has --outputs-dir: check it
			// before the step changes anything it could then not report.
			if err := outputs.Check(c.String(OutputsDirFlag)); err != nil {
				return exitcode.AsInvalid(err)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return s.Action(ctx, c, &Runtime{Log: logger, Redactor: red, Stdout: out})
		}
	}
	err := app.Run(args)
	if err == nil {
		return exitcode.OK
	}
	code := exitcode.Code(err)
	var ec cli.ExitCoder
	if errors.As(err, &ec) && !isOurs(err) {
		code = ec.ExitCode()
	}
	if code == exitcode.OK {
		return code
	}
	fmt.Fprintf(errw, "%s: %s\n", s.Name, oneLine(err.Error()))
	if strings.Contains(err.Error(), "flag provided but not defined") || strings.Contains(err.Error(), "Required flag") {
		return exitcode.Invalid
	}
	return code
}

func isOurs(err error) bool {
	var e *exitcode.Error
	return errors.As(err, &e)
}

// stderrFile keeps terminal detection working: the logger writes through the
// redactor, but "auto" must see whether the real stderr is a terminal.
func stderrFile(real io.Writer, redacted io.Writer) io.Writer {
	if f, ok := real.(*os.File); ok {
		return &fileWriter{File: f, w: redacted}
	}
	return redacted
}

// fileWriter is an *os.File for terminal detection whose writes go through
// the redactor.
type fileWriter struct {
	*os.File
	w io.Writer
}

func (f *fileWriter) Write(p []byte) (int, error) { return f.w.Write(p) }

// oneLine folds a multi-line error onto one line so it reads as one event.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
