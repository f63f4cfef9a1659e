package stepcli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
)

func TestEnv(t *testing.T) {
	assert.Equal(t, []string{"SLIPWAY_DRY_RUN"}, Env("dry-run"))
}

func TestMainExitCodesAndRedaction(t *testing.T) {
	step := func(ret error) Step {
		return Step{
			Name:  "demo",
			Flags: []cli.Flag{&cli.StringFlag{Name: "app", Required: true}, &cli.StringFlag{Name: "token"}},
			Action: func(_ context.Context, c *cli.Context, rt *Runtime) error {
				rt.Redactor.Add(c.String("token"))
				rt.Log.Info("using token", "token", c.String("token"))
				if ret != nil {
					return errors.Join(ret, errors.New("remote said "+c.String("token")+"\nsecond line"))
				}
				return nil
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
				Name:   "demo",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "outputs-dir"}},
				Action: func(context.Context, *cli.Context, *Runtime) error { ran = true; return nil },
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
