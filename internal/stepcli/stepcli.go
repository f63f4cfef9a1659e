// Package stepcli is the part every step binary shares, and the only place
// a step's result becomes what the world sees. A step's main.go declares
// its flags and one Run function that calls its domain package; stepcli
// gives it the SLIPWAY_* twin of each flag, --log-format and --debug, a
// redacting logger and stdout, a context cancelled on SIGTERM, and checks
// --outputs-dir before the step runs. Then it turns what Run returned into
// the log line, the Argo outputs files (with `outcome`) and the exit code
// (docs/architecture.md section 3); an error becomes one clear line.
package stepcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/logging"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/outcome"
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
	// Outputs names the Argo output parameters the step writes besides
	// `outcome`: templates read them, and a Result with another one fails.
	Outputs []string
	// Run runs the step (nil for a binary that only has Commands).
	Run RunFunc
	// Commands are subcommands (migrate lint), each with its own Run.
	Commands []Command
}

// Command is a subcommand of a step.
type Command struct {
	Name, Usage, UsageText, Description string
	Flags                               []cli.Flag
	Outputs                             []string
	Run                                 RunFunc
}

// RunFunc runs a step: it reads its flags from c, calls its domain
// package and returns the result. Runtime carries the logger, the redactor
// and the redacted stdout; ctx is cancelled on SIGINT/SIGTERM. A Result
// returned with an error still has its outputs written.
type RunFunc func(ctx context.Context, c *cli.Context, rt *Runtime) (outcome.Reporter, error)

// OutputsDirFlag is the flag of every step that writes Argo outputs; Main
// checks that the folder is writable before the step runs.
const OutputsDirFlag = "outputs-dir"

// Runtime is what a RunFunc gets besides its flags.
type Runtime struct {
	Log      *slog.Logger
	Redactor *redact.Redactor
	// Stdout is redacted; print results (diffs, summaries) here.
	Stdout io.Writer
	// Stderr is redacted; a child process's error output goes here.
	Stderr io.Writer
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
	if len(args) == 3 && args[1] == InstallArg {
		return install(s.Name, args[2], stdout, stderr)
	}
	if len(args) == 2 && args[1] == DescribeArg {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(Describe(s)); err != nil {
			return exitcode.Failed
		}
		return exitcode.OK
	}
	red := &redact.Redactor{}
	sio := &stepIO{red: red, out: red.Writer(stdout), errw: red.Writer(stderr), stderr: stderr}
	app := &cli.App{
		Name:                 s.Name,
		Usage:                s.Usage,
		UsageText:            s.UsageText,
		Description:          s.Description,
		Flags:                append(append([]cli.Flag{}, s.Flags...), CommonFlags()...),
		Writer:               sio.out,
		ErrWriter:            sio.errw,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		// Errors are printed once, below, with the right exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return exitcode.AsInvalid(err)
		},
	}
	if s.Run != nil {
		app.Action = sio.action(s.Run, s.Outputs)
	}
	for _, sub := range s.Commands {
		app.Commands = append(app.Commands, &cli.Command{Name: sub.Name, Usage: sub.Usage, UsageText: sub.UsageText,
			Description: sub.Description, Flags: append(append([]cli.Flag{}, sub.Flags...), CommonFlags()...),
			Action: sio.action(sub.Run, sub.Outputs)})
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
	fmt.Fprintf(sio.errw, "%s: %s\n", s.Name, oneline.Fold(err.Error()))
	if strings.Contains(err.Error(), "flag provided but not defined") || strings.Contains(err.Error(), "Required flag") {
		return exitcode.Invalid
	}
	return code
}

// stepIO is where a step's output goes: stdout and stderr behind the
// redactor, and the real stderr (for terminal detection).
type stepIO struct {
	red       *redact.Redactor
	out, errw io.Writer
	stderr    io.Writer
}

// action runs fn as a cli action: the runtime first (logger, outputs
// check, signals), then fn, then its result.
func (o *stepIO) action(fn RunFunc, declared []string) cli.ActionFunc {
	return func(c *cli.Context) error {
		level := slog.LevelInfo
		if set(c, "debug").Bool("debug") {
			level = slog.LevelDebug
		}
		logger, err := logging.New(stderrFile(o.stderr, o.errw), set(c, "log-format").String("log-format"), level, o.red)
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
		rt := &Runtime{Log: logger, Redactor: o.red, Stdout: o.out, Stderr: o.errw}
		rep, err := fn(ctx, c, rt)
		return finish(c, rt, declared, rep, err)
	}
}

// set is the context in c's lineage where flag was given (`migrate
// --log-format text lint` and `migrate lint --log-format text` alike), or c.
func set(c *cli.Context, flag string) *cli.Context {
	for _, l := range c.Lineage() {
		if l.IsSet(flag) {
			return l
		}
	}
	return c
}

// errOutcome marks an outcome whose exit code is not 0: Main prints its
// reason as the step's one line and exits with its code.
type errOutcome struct{ res outcome.Result }

func (e errOutcome) Error() string { return e.res.Reason }

// finish turns what a step's Run returned into the outputs files, the log
// line and the error Main reports.
func finish(c *cli.Context, rt *Runtime, declared []string, rep outcome.Reporter, err error) error {
	if err != nil {
		if rep != nil {
			res := rep.Report()
			res.Outcome = outcome.ForExitCode(exitcode.Code(err))
			_ = writeOutputs(c, rt, declared, res) // the error is what to report
		}
		return err
	}
	if rep == nil {
		return exitcode.Failedf("the step returned no result")
	}
	res := rep.Report()
	if !res.Outcome.Valid() {
		return exitcode.Failedf("the step returned no outcome (%s)", res.Reason)
	}
	if err := writeOutputs(c, rt, declared, res); err != nil {
		return err
	}
	if code := res.Outcome.ExitCode(); code != exitcode.OK {
		return &exitcode.Error{Code: code, Err: errOutcome{res}}
	}
	msg := res.Event
	if msg == "" {
		msg = res.Reason
	}
	rt.Log.Info(msg, res.Attrs...)
	return nil
}

// writeOutputs writes res's outputs and its outcome into --outputs-dir,
// masked of every secret.
func writeOutputs(c *cli.Context, rt *Runtime, declared []string, res outcome.Result) error {
	for k := range res.Outputs {
		if !slices.Contains(declared, k) {
			return exitcode.Failedf("output %q is not one the step declares (%s)", k, strings.Join(declared, ", "))
		}
	}
	dir := c.String(OutputsDirFlag)
	if dir == "" {
		return nil
	}
	values := make(map[string]string, len(res.Outputs)+1)
	for k, v := range res.Outputs {
		values[k] = rt.Redactor.String(v)
	}
	values["outcome"] = res.Outcome.String()
	return outputs.Write(dir, values)
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

// DescribeArg, as a step's only argument, prints the step's contract (its
// flags with their environment twins, its outputs, its subcommands) as
// JSON instead of running it: the WorkflowTemplates are checked against
// what each binary really defines.
const DescribeArg = "--describe"

// Contract is what a step accepts and writes.
type Contract struct {
	Name     string     `json:"name"`
	Flags    []FlagSpec `json:"flags"`
	Outputs  []string   `json:"outputs"`
	Commands []Contract `json:"commands,omitempty"`
}

// FlagSpec is one flag of a Contract.
type FlagSpec struct {
	Names      []string `json:"names"`
	Env        []string `json:"env,omitempty"`
	TakesValue bool     `json:"takesValue"`
}

// Describe is s's contract, read from its own declarations. `outcome` is
// an output of every step.
func Describe(s Step) Contract {
	c := contract(s.Name, append(append([]cli.Flag{}, s.Flags...), CommonFlags()...), s.Outputs)
	for _, sub := range s.Commands {
		c.Commands = append(c.Commands, contract(sub.Name, append(append([]cli.Flag{}, sub.Flags...), CommonFlags()...), sub.Outputs))
	}
	return c
}

func contract(name string, flags []cli.Flag, outs []string) Contract {
	c := Contract{Name: name, Outputs: append(append([]string{}, outs...), "outcome")}
	for _, f := range flags {
		spec := FlagSpec{Names: f.Names()}
		if d, ok := f.(cli.DocGenerationFlag); ok {
			spec.Env, spec.TakesValue = d.GetEnvVars(), d.TakesValue()
		}
		c.Flags = append(c.Flags, spec)
	}
	return c
}

// InstallArg, followed by a folder, copies the running binary into that
// folder under the step's name and exits: the init container of a
// WorkflowTemplate uses it to put a step into an emptyDir that the app's
// own image then runs it from (the Slipway image holds no shell or cp).
const InstallArg = "--install"

func install(name, dir string, stdout, stderr io.Writer) int {
	err := func() error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(self)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return renameio.WriteFile(filepath.Join(dir, name), data, 0o755)
	}()
	if err != nil {
		fmt.Fprintf(stderr, "%s: install into %s: %s\n", name, dir, oneline.Fold(err.Error()))
		return exitcode.Failed
	}
	fmt.Fprintf(stdout, "%s: installed %s\n", name, filepath.Join(dir, name))
	return exitcode.OK
}
