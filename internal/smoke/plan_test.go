package smoke

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/outcome"
)

func TestSecretVar(t *testing.T) {
	tests := []struct {
		name   string
		listed []string
		want   bool
	}{
		{"API_KEY", nil, true},
		{"apikey", nil, true},
		{"GITHUB_TOKEN", nil, true},
		{"Session_Token_2", nil, true},
		{"DB_PASSWORD", nil, true},
		{"client_secret", nil, true},
		{"SEARCH_TERM", nil, false},
		{"ENV", nil, false},
		{"SEARCH_TERM", []string{"OTHER", " SEARCH_TERM "}, true},
		{"search_term", []string{"SEARCH_TERM"}, false}, // names are case-sensitive, like the environment's
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, SecretVar(tt.name, tt.listed))
		})
	}
}

// Prepare registers the value of every secret ${VAR} the spec uses, and
// only those.
func TestPrepareRegistersSecretVars(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "checks.yaml")
	require.NoError(t, os.WriteFile(spec, []byte("checks:\n  - path: /${ENV}/${REGION}?k=${API_KEY}&t=${TERM}&e=${EMPTY_TOKEN}\n"), 0o644))
	env := map[string]string{"REGION": "eu-west-2", "API_KEY": "k-123", "TERM": "tax", "EMPTY_TOKEN": "", "UNUSED_TOKEN": "u-456"}
	var secrets []string
	plan, err := Prepare(Config{
		SpecFile: spec, BaseURL: "https://www.example", EnvName: "staging", SecretVars: []string{"TERM"},
		Concurrency: 1, Deadline: DefaultDeadline, RequestTimeout: DefaultRequestTimeout,
		Getenv: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
		Secret: func(s ...string) { secrets = append(secrets, s...) },
	})
	require.NoError(t, err)
	assert.Equal(t, "https://www.example/staging/eu-west-2?k=k-123&t=tax&e=", plan.Checks[0].URL)
	assert.ElementsMatch(t, []string{"k-123", "tax", ""}, secrets)
}

// What a run reports: the outcome, the one line of a failure, and the
// counts as outputs once checks ran.
func TestReport(t *testing.T) {
	passed := CheckResult{Name: "home", Passed: true}
	failed := CheckResult{Name: "search"}
	for _, tc := range []struct {
		name    string
		res     Result
		outcome outcome.Outcome
		reason  string
		outputs map[string]string
	}{
		{"passed", Result{Checks: []CheckResult{passed, passed}, ran: true}, outcome.Passed,
			"smoke tests passed: 2 passed, 0 failed", map[string]string{"passed": "2", "failed": "0", "summary": "2 passed, 0 failed"}},
		{"a check failed", Result{Checks: []CheckResult{passed, failed}, ran: true}, outcome.ChecksFailed,
			"smoke tests failed: 1 passed, 1 failed (failed: search)", map[string]string{"passed": "1", "failed": "1", "summary": "1 passed, 1 failed (failed: search)"}},
		{"the suite failed", Result{SuiteRan: true, SuiteErr: errors.New("suite command exited with status 1"), ran: true}, outcome.ChecksFailed,
			"smoke tests failed: 0 passed, 0 failed; suite command exited with status 1",
			map[string]string{"passed": "0", "failed": "0", "summary": "0 passed, 0 failed; suite command exited with status 1"}},
		{"dry run", Result{DryRun: true, Planned: 3}, outcome.DryRun, "dry run: nothing requested", nil},
		{"nothing ran", Result{}, outcome.Passed, "smoke tests passed: 0 passed, 0 failed", nil},
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
