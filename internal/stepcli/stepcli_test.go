package stepcli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
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
		Action: func(_ context.Context, c *cli.Context, rt *Runtime) error {
			log := rt.Log.With("remote", "https://x:"+c.String("token")+"@git.example")
			rt.Redactor.Add(c.String("token"))
			log.Info("pushed with "+c.String("token"), "token", c.String("token"),
				"err", errors.New("remote said "+c.String("token")),
				slog.Group("auth", "header", "Bearer "+c.String("token")))
			return nil
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
				require.NoError(t, json.Unmarshal(errb.Bytes(), &line), errb.String())
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
