package promoterserver

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExampleConfig(t *testing.T) {
	cfg, err := LoadConfig(examplePath)
	require.NoError(t, err)
	assert.Equal(t, []string{"integration", "staging", "production"}, cfg.Layout.Chain())
	assert.Equal(t, 30*time.Minute, cfg.Policy.Soak["production"])
	assert.Equal(t, 72*time.Hour, cfg.Policy.Deadline)
	fr := cfg.Policy.Freezes["production"]
	require.NotNil(t, fr)
	assert.Equal(t, "Europe/London", fr.Location.String())
	_, _, frozen := fr.FrozenUntil(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	assert.True(t, frozen, "a Saturday")
	_, _, frozen = fr.FrozenUntil(time.Date(2026, 12, 30, 12, 0, 0, 0, time.UTC))
	assert.True(t, frozen, "the Christmas freeze")
	assert.Nil(t, cfg.Policy.Freezes["staging"])
	assert.Equal(t, 20*time.Second, cfg.ReplyBudget)
}

func TestConfigErrors(t *testing.T) {
	example, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	for _, tc := range []struct{ name, from, to, want string }{
		{"typo in a key", "freezes:", "freezs:", "field freezs not found"},
		{"no repo url", "url: https://github.com/alphagov/govuk-helm-charts.git", "url: \"\"", "repo.url is required"},
		{"bad strategy", "strategy: direct", "strategy: merge", `repo.strategy "merge"`},
		{"unknown freeze env", "freezes:\n  production:", "freezes:\n  prod:", `freezes: environment "prod" is not in the chain`},
		{"bad weekday", `from: "Fri 17:00"`, `from: "Fry 17:00"`, `freezes.production: weekly[0].from: "Fry 17:00": "Fry" is not a weekday`},
		{"bad time zone", "timezone: Europe/London", "timezone: Europe/Lundun", `timezone "Europe/Lundun"`},
		{"dates reversed", `to: "2027-01-04"`, `to: "2026-12-01"`, "to 2026-12-01 is before from 2026-12-20"},
		{"bad soak", "production: 30m", "production: half-an-hour", `soak.production "half-an-hour"`},
		{"reply budget past the agent's wait", "replyBudget: 20s", "replyBudget: 40s", "replyBudget 40s: want more than 0 and at most 25s"},
		{"bad release pattern", `releasePattern: "^v[0-9]+$"`, `releasePattern: "^v[0-9+$"`, "release pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(string(example), tc.from, tc.to, 1)
			require.NotEqual(t, string(example), src, "the mutation applies")
			_, err := ParseConfig([]byte(src))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
