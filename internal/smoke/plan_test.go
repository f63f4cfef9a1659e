package smoke

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	plan, err := Prepare(Settings{
		SpecFile: spec, BaseURL: "https://www.example", EnvName: "staging", SecretVars: []string{"TERM"},
		Config: Config{Concurrency: 1, Deadline: DefaultDeadline, RequestTimeout: DefaultRequestTimeout},
		Getenv: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
		Secret: func(s ...string) { secrets = append(secrets, s...) },
	})
	require.NoError(t, err)
	assert.Equal(t, "https://www.example/staging/eu-west-2?k=k-123&t=tax&e=", plan.Checks[0].URL)
	assert.ElementsMatch(t, []string{"k-123", "tax", ""}, secrets)
}
