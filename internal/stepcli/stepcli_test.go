package stepcli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
)

func TestEnv(t *testing.T) {
	assert.Equal(t, []string{"SLIPWAY_DRY_RUN"}, Env("dry-run"))
}

func TestMainExitCodesAndRedaction(t *testing.T) {
	step := func(ret error) Step {
		return Step{
			Name:  "demo",
			Flags: []cli.Flag{&cli.StringFlag{Name: "app", Required: true}, &cli.StringFlag{Name: "token"}},
			Run: func(_ context.Context, c *cli.Context, rt *Runtime) (outcome.Reporter, error) {
				rt.Redactor.Add(c.String("token"))
				rt.Log.Info("using token", "token", c.String("token"))
				if ret != nil {
					return nil, errors.Join(ret, errors.New("remote said "+c.String("token")+"\nsecond line"))
				}
				return outcome.Result{Outcome: outcome.Passed, Reason: "done"}, nil
			},
		}
	}
	tests := []struct {
		name string
		args []string
		ret  error
		want int
	}{
		{"ok", []string{"--app", "a", "--token", "tok3n"}, nil, exitcode.OK},
		{"failed", []string{"--app", "a", "--token", "tok3n"}, errors.New("push failed"), exitcode.Failed},
		{"invalid", []string{"--app", "a", "--token", "tok3n"}, exitcode.Invalidf("bad app"), exitcode.Invalid},
		{"unknown flag", []string{"--nope"}, nil, exitcode.Invalid},
		{"missing required flag", []string{}, nil, exitcode.Invalid},
		{"bad log format", []string{"--app", "a", "--log-format", "xml"}, nil, exitcode.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(step(tt.ret), append([]string{"demo"}, tt.args...), &out, &errb)
			assert.Equal(t, tt.want, code, errb.String())
			assert.NotContains(t, out.String()+errb.String(), "tok3n")
			if tt.ret != nil {
				last := errb.String()[bytes.LastIndexByte(bytes.TrimRight(errb.Bytes(), "\n"), '\n')+1:]
				assert.Regexp(t, `^demo: .*remote said \*\*\* second line\n$`, last)
			}
		})
	}
}

// A secret holding characters that JSON, XML and Go quoting escape, and
// non-ASCII: once a log handler has escaped it, masking the written bytes
// no longer finds it.
const awkwardSecret = `pa&ss<w>"o'rd\ü€✓`

// encodedForms is the secret as the encoders a step's output goes through write it.
func encodedForms(t *testing.T, s string) []string {
	t.Helper()
	js, err := json.Marshal(s)
	require.NoError(t, err)
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(s))
	var x bytes.Buffer
	require.NoError(t, xml.EscapeText(&x, []byte(s)))
	q := strconv.Quote(s)
	return []string{s, string(js[1 : len(js)-1]), strings.TrimSpace(plain.String())[1 : len(strings.TrimSpace(plain.String()))-1], x.String(), q[1 : len(q)-1]}
}

func TestLogsMaskSecretsBeforeEncoding(t *testing.T) {
	step := Step{
		Name:  "demo",
		Flags: []cli.Flag{&cli.StringFlag{Name: "token"}},
		Run: func(_ context.Context, c *cli.Context, rt *Runtime) (outcome.Reporter, error) {
			log := rt.Log.With("remote", "https://x:"+c.String("token")+"@git.example")
			rt.Redactor.Add(c.String("token"))
			log.Info("pushed with "+c.String("token"), "token", c.String("token"),
				"err", errors.New("remote said "+c.String("token")),
				slog.Group("auth", "header", "Bearer "+c.String("token")))
			return outcome.Result{Outcome: outcome.Passed, Reason: "done"}, nil
		},
	}
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(step, []string{"demo", "--log-format", format, "--token", awkwardSecret}, &out, &errb)
			require.Equal(t, exitcode.OK, code, errb.String())
			require.Contains(t, errb.String(), "pushed with ***")
			for _, form := range encodedForms(t, awkwardSecret) {
				assert.NotContains(t, errb.String(), form)
			}
			if format == "json" {
				var line map[string]any
				first, _, _ := bytes.Cut(errb.Bytes(), []byte("\n"))
				require.NoError(t, json.Unmarshal(first, &line), errb.String())
				assert.Equal(t, "***", line["token"])
				assert.Equal(t, "remote said ***", line["err"])
				assert.Equal(t, "https://x:***@git.example", line["remote"])
				assert.Equal(t, map[string]any{"header": "Bearer ***"}, line["auth"])
			}
		})
	}
}

// A step that writes outputs refuses to start (exit 2) when its outputs
// folder cannot be written: nothing is done that could not be reported.
func TestOutputsDirCheckedBeforeTheStepRuns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	for _, tc := range []struct {
		name string
		dir  string
		ran  bool
		code int
	}{
		{"writable", filepath.Join(t.TempDir(), "out"), true, exitcode.OK},
		{"under a file", filepath.Join(file, "out"), false, exitcode.Invalid},
		{"read-only file system", "/proc/self", false, exitcode.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran := false
			step := Step{
				Name:  "demo",
				Flags: []cli.Flag{&cli.StringFlag{Name: "outputs-dir"}},
				Run: func(context.Context, *cli.Context, *Runtime) (outcome.Reporter, error) {
					ran = true
					return outcome.Result{Outcome: outcome.Passed, Reason: "done"}, nil
				},
			}
			var out, errb bytes.Buffer
			code := Main(step, []string{"demo", "--outputs-dir", tc.dir}, &out, &errb)
			assert.Equal(t, tc.code, code, errb.String())
			assert.Equal(t, tc.ran, ran)
			if !tc.ran {
				assert.Contains(t, errb.String(), "demo: outputs dir "+tc.dir+" is not writable")
			}
		})
	}
}

// What a step's Run returns is all the world sees: the log line, the
// outputs (with `outcome`), the one line of a failure and the exit code.
func TestRunResultBecomesLogOutputsAndExitCode(t *testing.T) {
	withOutputs := func(o outcome.Outcome, reason string) outcome.Result {
		return outcome.Result{Outcome: o, Reason: reason, Attrs: []any{"app", "frontend"},
			Outputs: map[string]string{"changed": fmt.Sprint(o.Wrote()), "reason": reason + " tok3n"}}
	}
	for _, tc := range []struct {
		name     string
		rep      outcome.Reporter
		err      error
		code     int
		outcome  string // "" when no outputs are written
		reason   string
		logLine  string // in stderr
		oneLine  string // the last stderr line of a failure
		noLogMsg bool
	}{
		{"written", withOutputs(outcome.Updated, "updated"), nil, exitcode.OK, "updated", "updated ***",
			`level=INFO msg=updated app=frontend`, "", false},
		{"nothing to do", withOutputs(outcome.AlreadyThere, "already at v42"), nil, exitcode.OK, "already-there", "already at v42 ***",
			`level=INFO msg="already at v42" app=frontend`, "", false},
		{"event differs from reason", outcome.Result{Outcome: outcome.Published, Reason: "3 uploaded", Event: "published"}, nil,
			exitcode.OK, "published", "", `level=INFO msg=published`, "", false},
		{"a failing outcome is one line and its exit code", withOutputs(outcome.ChecksFailed, "smoke tests failed: 1 of 2"), nil,
			exitcode.Failed, "checks-failed", "smoke tests failed: 1 of 2 ***", "", "demo: smoke tests failed: 1 of 2\n", true},
		{"held", withOutputs(outcome.ExpectationFailed, "expected v41, found v40"), nil, exitcode.Held, "expectation-failed",
			"expected v41, found v40 ***", "", "demo: expected v41, found v40\n", true},
		{"an error with a result still writes its outputs", withOutputs(outcome.Published, "2 of 3 uploaded"),
			exitcode.Failedf("1 of 3 objects did not make it"), exitcode.Failed, "failed", "2 of 3 uploaded ***", "",
			"demo: 1 of 3 objects did not make it\n", true},
		{"an invalid input without a result", nil, exitcode.Invalidf("--app: bad"), exitcode.Invalid, "", "", "", "demo: --app: bad\n", true},
		{"no outcome is a failure", outcome.Result{Reason: "forgot"}, nil, exitcode.Failed, "", "", "",
			"demo: the step returned no outcome (forgot)\n", true},
		{"no result is a failure", nil, nil, exitcode.Failed, "", "", "", "demo: the step returned no result\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			step := Step{
				Name:    "demo",
				Flags:   []cli.Flag{&cli.StringFlag{Name: OutputsDirFlag}},
				Outputs: []string{"changed", "reason"},
				Run: func(_ context.Context, _ *cli.Context, rt *Runtime) (outcome.Reporter, error) {
					rt.Redactor.Add("tok3n")
					return tc.rep, tc.err
				},
			}
			var out, errb bytes.Buffer
			code := Main(step, []string{"demo", "--log-format", "text", "--outputs-dir", dir}, &out, &errb)
			assert.Equal(t, tc.code, code, errb.String())
			assert.NotContains(t, errb.String(), "tok3n")
			if tc.outcome == "" {
				_, err := os.Stat(filepath.Join(dir, "outcome"))
				assert.True(t, os.IsNotExist(err), "no outputs without a result")
			} else {
				b, err := os.ReadFile(filepath.Join(dir, "outcome"))
				require.NoError(t, err)
				assert.Equal(t, tc.outcome, string(b))
				if tc.reason != "" {
					b, err = os.ReadFile(filepath.Join(dir, "reason"))
					require.NoError(t, err)
					assert.Equal(t, tc.reason, string(b), "outputs are masked")
				}
			}
			if tc.logLine != "" {
				assert.Contains(t, errb.String(), tc.logLine)
			}
			if tc.noLogMsg {
				assert.NotContains(t, errb.String(), "level=INFO")
			}
			if tc.oneLine != "" {
				assert.True(t, strings.HasSuffix(errb.String(), tc.oneLine), errb.String())
			}
		})
	}
}

// A subcommand gets the same runtime and the same handling of its result.
func TestCommandsRunLikeTheStep(t *testing.T) {
	step := Step{
		Name: "demo",
		Commands: []Command{{Name: "lint", Flags: []cli.Flag{&cli.StringFlag{Name: "secret"}},
			Run: func(_ context.Context, c *cli.Context, rt *Runtime) (outcome.Reporter, error) {
				rt.Redactor.Add(c.String("secret"))
				rt.Log.Info("linting with " + c.String("secret"))
				return outcome.Result{Outcome: outcome.ChecksFailed, Reason: "1 finding in " + c.String("secret")}, nil
			}}},
	}
	var out, errb bytes.Buffer
	code := Main(step, []string{"demo", "lint", "--log-format", "json", "--secret", "pa55word"}, &out, &errb)
	assert.Equal(t, exitcode.Failed, code)
	assert.Contains(t, errb.String(), `"msg":"linting with ***"`)
	assert.True(t, strings.HasSuffix(errb.String(), "demo: 1 finding in ***\n"), errb.String())
	assert.NotContains(t, errb.String(), "pa55word")
}

// A Result may only carry the outputs its step declares: a template reads
// what --describe says, so an undeclared output is a bug, not an output.
func TestUndeclaredOutputFails(t *testing.T) {
	dir := t.TempDir()
	step := Step{
		Name: "demo", Flags: []cli.Flag{&cli.StringFlag{Name: OutputsDirFlag}}, Outputs: []string{"changed"},
		Run: func(context.Context, *cli.Context, *Runtime) (outcome.Reporter, error) {
			return outcome.Result{Outcome: outcome.Updated, Reason: "updated", Outputs: map[string]string{"changed": "true", "comit": "abc"}}, nil
		},
	}
	var out, errb bytes.Buffer
	code := Main(step, []string{"demo", "--outputs-dir", dir}, &out, &errb)
	assert.Equal(t, exitcode.Failed, code)
	assert.Equal(t, "demo: output \"comit\" is not one the step declares (changed)\n", errb.String())
}

func TestDescribe(t *testing.T) {
	step := Step{
		Name: "demo",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "app", Required: true, EnvVars: Env("app")},
			&cli.BoolFlag{Name: "dry-run", EnvVars: Env("dry-run")},
		},
		Outputs:  []string{"changed"},
		Run:      func(context.Context, *cli.Context, *Runtime) (outcome.Reporter, error) { panic("not run") },
		Commands: []Command{{Name: "lint", Flags: []cli.Flag{&cli.StringFlag{Name: "sql-dir"}}}},
	}
	var out, errb bytes.Buffer
	require.Equal(t, exitcode.OK, Main(step, []string{"demo", DescribeArg}, &out, &errb), "required flags are not asked for")
	var got Contract
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	common := []FlagSpec{{Names: []string{"log-format"}, Env: Env("log-format"), TakesValue: true}, {Names: []string{"debug"}, Env: Env("debug")}}
	assert.Equal(t, Contract{
		Name: "demo",
		Flags: append([]FlagSpec{{Names: []string{"app"}, Env: []string{"SLIPWAY_APP"}, TakesValue: true},
			{Names: []string{"dry-run"}, Env: []string{"SLIPWAY_DRY_RUN"}}}, common...),
		Outputs:  []string{"changed", "outcome"},
		Commands: []Contract{{Name: "lint", Flags: append([]FlagSpec{{Names: []string{"sql-dir"}, TakesValue: true}}, common...), Outputs: []string{"outcome"}}},
	}, got)
}

// --log-format and --debug given before the subcommand count for it too.
func TestCommonFlagsBeforeTheSubcommand(t *testing.T) {
	step := Step{Name: "demo", Commands: []Command{{Name: "lint",
		Run: func(_ context.Context, _ *cli.Context, rt *Runtime) (outcome.Reporter, error) {
			rt.Log.Debug("looking")
			return outcome.Result{Outcome: outcome.Passed, Reason: "clean"}, nil
		}}}}
	for _, args := range [][]string{
		{"demo", "--log-format", "text", "--debug", "lint"},
		{"demo", "lint", "--log-format", "text", "--debug"},
	} {
		var out, errb bytes.Buffer
		require.Equal(t, exitcode.OK, Main(step, args, &out, &errb))
		assert.Contains(t, errb.String(), "level=DEBUG msg=looking", args)
		assert.Contains(t, errb.String(), "level=INFO msg=clean", args)
	}
}

// `<step> --install DIR` puts a runnable copy of the binary in DIR, as a
// template's init container does for the app's own image.
func TestInstallCopiesTheRunningBinary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "slipway", "bin")
	step := Step{Name: "demo", Flags: []cli.Flag{&cli.StringFlag{Name: "app", Required: true}}}
	var out, errb bytes.Buffer
	require.Equal(t, exitcode.OK, Main(step, []string{"demo", InstallArg, dir}, &out, &errb), errb.String())
	assert.Equal(t, "demo: installed "+filepath.Join(dir, "demo")+"\n", out.String())
	self, err := os.Executable()
	require.NoError(t, err)
	want, err := os.ReadFile(self)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "demo"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the copy is the binary")
	fi, err := os.Stat(filepath.Join(dir, "demo"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())

	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	out.Reset()
	assert.Equal(t, exitcode.Failed, Main(step, []string{"demo", InstallArg, filepath.Join(file, "bin")}, &out, &errb))
	assert.Contains(t, errb.String(), "demo: install into "+filepath.Join(file, "bin")+": ")
}
