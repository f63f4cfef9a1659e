package migrate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/sqllint"
)

func TestCommand(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name     string
		args     []string
		timeout  time.Duration
		wantCode int
		wantErr  string
		wantOut  string
	}{
		{"success, env passed through", []string{"sh", "-c", "echo $SLIPWAY_TEST_MARK"}, 0, 0, "", "mark-42\n"},
		{"failure", []string{"sh", "-c", "echo partial; exit 3"}, 0, exitcode.Failed, "exited with status 3", "partial\n"},
		{"timeout", []string{"sleep", "10"}, 200 * time.Millisecond, exitcode.Failed, "was killed by terminated", ""},
		{"not found", []string{"/no/such/migrate-command"}, 0, exitcode.Invalid, "start command /no/such/migrate-command", ""},
		{"empty", nil, 0, exitcode.Invalid, "no command given", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SLIPWAY_TEST_MARK", "mark-42")
			var out bytes.Buffer
			err := Command{Args: tc.args, Stdout: &out, Stderr: &out, Timeout: tc.timeout, GracePeriod: time.Second, Log: log}.Run(context.Background())
			assert.Equal(t, tc.wantCode, exitcode.Code(err), "%v", err)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
			}
			assert.Equal(t, tc.wantOut, out.String())
		})
	}
}

func TestCommandKillsWhatItLeftBehind(t *testing.T) {
	// the command exits, leaving a background process in its group
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	err := Command{Args: []string{"sh", "-c", `sleep 30 & echo $! > "$1"`, "sh", pidFile}, GracePeriod: time.Second, Log: slog.New(slog.DiscardHandler)}.Run(context.Background())
	require.NoError(t, err)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid := strings.TrimSpace(string(b))
	// the group was SIGKILLed: the leftover is gone (or a zombie reaped by init)
	require.Eventually(t, func() bool {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		return err != nil || strings.Contains(string(st), ") Z ")
	}, 5*time.Second, 20*time.Millisecond)
}

func TestCommandStopsWhenCancelled(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cmd := Command{Args: []string{"sleep", "10"}, GracePeriod: time.Second, Log: log}

	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("shutting down"))
	err := cmd.Run(ctx)
	require.ErrorContains(t, err, "command sleep not started: shutting down")
	assert.Equal(t, exitcode.Failed, exitcode.Code(err))

	ctx, cancel = context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(errors.New("shutting down")) })
	err = cmd.Run(ctx)
	require.ErrorContains(t, err, "command sleep was killed by terminated")
	assert.Contains(t, err.Error(), "(shutting down)")
	assert.Equal(t, exitcode.Failed, exitcode.Code(err))
}

func TestReadDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string
		want    []string
		wantErr string
	}{
		{"ordered by version, downs and other files skipped",
			[]string{"10_c.up.sql", "2_b.up.sql", "0001_a.up.sql", "0001_a.down.sql", "README.md"},
			[]string{"0001_a.up.sql", "2_b.up.sql", "10_c.up.sql"}, ""},
		{"misnamed", []string{"0001_a.up.sql", "add_users.sql"}, nil, "add_users.sql is not named"},
		{"duplicate version", []string{"0001_a.up.sql", "1_b.up.sql"}, nil, "have the same version 1"},
		{"empty", []string{"README.md"}, nil, "has no NNNN_name.up.sql files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("SELECT 1;"), 0o644))
			}
			got, err := ReadDir(dir)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
				return
			}
			require.NoError(t, err)
			var names []string
			for _, f := range got {
				names = append(names, f.Name)
			}
			assert.Equal(t, tc.want, names)
		})
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]uint64{"0041": 41, "41": 41, "0041_add_users.up.sql": 41, " 7 ": 7} {
		got, err := ParseVersion(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "v41", "latest", "-1"} {
		_, err := ParseVersion(in)
		assert.Error(t, err, in)
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"0041", "0041_x.up.sql", "", "99999999999999999999999", "1_a.down.sql"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		// the version is the input's number: it reads back the same
		back, err := ParseVersion(strconv.FormatUint(v, 10))
		if err != nil || back != v {
			t.Fatalf("%q gave %d, which reads back as %d (%v)", s, v, back, err)
		}
		if !strings.Contains(s, strconv.FormatUint(v, 10)) && !strings.Contains(s, "0") {
			t.Fatalf("%q gave %d, a number not in it", s, v)
		}
	})
}

// What a run reports: its outcome, its log line, and the outputs applied
// and duration once the lock was held.
func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		res     Result
		outcome outcome.Outcome
		reason  string
		outputs map[string]string
	}{
		{"command", Result{Duration: 2046 * time.Millisecond, migrated: true}, outcome.Migrated, "the migration command succeeded",
			map[string]string{"applied": "unknown", "duration": "2.046s"}},
		{"files applied", Result{SQL: true, Applied: 2, Duration: 131 * time.Millisecond, migrated: true}, outcome.Migrated, "applied 2 migration(s)",
			map[string]string{"applied": "2", "duration": "131ms"}},
		{"nothing pending", Result{SQL: true, Duration: 13 * time.Millisecond, migrated: true}, outcome.AlreadyThere, "no pending migrations",
			map[string]string{"applied": "0", "duration": "13ms"}},
		{"dry run", Result{SQL: true, DryRun: true}, outcome.DryRun, "dry run: nothing locked or migrated", nil},
		{"stopped before the lock", Result{SQL: true}, outcome.AlreadyThere, "no pending migrations", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.res.Report()
			assert.Equal(t, tc.outcome, r.Outcome)
			assert.Equal(t, tc.reason, r.Reason)
			assert.Equal(t, tc.outputs, r.Outputs)
			if r.Outputs != nil {
				assert.ElementsMatch(t, Outputs, slices.Collect(maps.Keys(r.Outputs)), "the outputs the step declares")
			}
		})
	}
}

// Lint's findings are checks that failed (exit 1); none is a pass.
func TestLintReport(t *testing.T) {
	r := LintResult{Files: 3, Findings: make([]sqllint.Finding, 2)}.Report()
	assert.Equal(t, outcome.ChecksFailed, r.Outcome)
	assert.Equal(t, "2 finding(s) in 3 file(s): these statements break the release still running while they apply (accept one with -- slipway:allow <rule>)", r.Reason)
	r = LintResult{Files: 4}.Report()
	assert.Equal(t, outcome.Passed, r.Outcome)
	assert.Equal(t, "4 file(s) checked, no findings", r.Reason)
}
