package holds

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	chain = []string{"integration", "staging", "production"}
	noon  = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
)

const example = `# incident holds
holds:
  - environments: [production]
    apps: ["*"]
    reason: INC-1234 checkout errors
    by: jane
    since: 2026-11-25T10:00:00Z
  # the search team's own
  - environments: [staging, production]
    apps: [search-api]
    reason: reindexing
    by: sam
    since: 2026-11-25T09:00:00Z
    until: 2026-11-25T11:00:00Z
`

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		holds         int
	}{
		{"example", example, "", 2},
		{"empty file", "", "", 0},
		{"only a comment", "# nothing held\n", "", 0},
		{"no holds", "holds: []\n", "", 0},
		{"null holds", "holds:\n", "", 0},
		{"not YAML", "holds: [\n", "yaml:", 0},
		{"unknown key", "holds:\n  - environments: [production]\n    apps: ['*']\n    reason: r\n    by: b\n    since: 2026-11-25T10:00:00Z\n    untill: 2026-11-26T10:00:00Z\n", "field untill not found", 0},
		{"a typo at the top", "hold: []\n", "field hold not found", 0},
		{"no environments", "holds:\n  - apps: ['*']\n    reason: r\n    by: b\n    since: 2026-11-25T10:00:00Z\n", "environments is required", 0},
		{"environment not in the chain", "holds:\n  - environments: [prodution]\n    apps: ['*']\n    reason: r\n    by: b\n    since: 2026-11-25T10:00:00Z\n", `environment "prodution" is not in the chain`, 0},
		{"no apps", "holds:\n  - environments: [production]\n    reason: r\n    by: b\n    since: 2026-11-25T10:00:00Z\n", "apps is required", 0},
		{"bad app", "holds:\n  - environments: [production]\n    apps: [../x]\n    reason: r\n    by: b\n    since: 2026-11-25T10:00:00Z\n", "not a valid name", 0},
		{"no reason", "holds:\n  - environments: [production]\n    apps: ['*']\n    by: b\n    since: 2026-11-25T10:00:00Z\n", "reason is required", 0},
		{"no by", "holds:\n  - environments: [production]\n    apps: ['*']\n    reason: r\n    since: 2026-11-25T10:00:00Z\n", "by is required", 0},
		{"no since", "holds:\n  - environments: [production]\n    apps: ['*']\n    reason: r\n    by: b\n", "since is required", 0},
		{"since not a time", "holds:\n  - environments: [production]\n    apps: ['*']\n    reason: r\n    by: b\n    since: yesterday\n", `parsing time "yesterday"`, 0},
		{"until before since", "holds:\n  - environments: [production]\n    apps: ['*']\n    reason: r\n    by: b\n    since: 2026-11-25T10:00:00Z\n    until: 2026-11-25T09:00:00Z\n", "until must be after since", 0},
		{"a list at the top", "- production\n", "yaml:", 0},
		{"two documents", "holds: []\n---\nholds: []\n", "more than one YAML document", 0},
		{"too big", "holds: []\n#" + strings.Repeat("x", MaxSize), "larger than", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, err := Parse([]byte(tc.in), chain)
			if tc.err != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrMalformed))
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "\n")
				return
			}
			require.NoError(t, err)
			assert.Len(t, hs, tc.holds)
		})
	}
}

func TestCovering(t *testing.T) {
	s := Load("charts/app-config/holds.yaml", []byte(example), true, nil, chain)
	require.NoError(t, s.Err())
	for _, tc := range []struct {
		env, app string
		now      time.Time
		want     string // the hold's name, "" for none
	}{
		{"production", "frontend", noon, "INC-1234 checkout errors by jane"},
		{"staging", "frontend", noon, ""},
		{"staging", "search-api", noon.Add(-2 * time.Hour), "reindexing by sam"},
		{"staging", "search-api", noon, ""}, // expired at 11:00: stops nothing
		{"staging", "search-api", time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC), ""},
		{"production", "search-api", noon, "INC-1234 checkout errors by jane"},
	} {
		h, ok := s.Covering(tc.env, tc.app, tc.now)
		assert.Equal(t, tc.want != "", ok, "%s %s", tc.env, tc.app)
		if ok {
			assert.Equal(t, tc.want, h.Name())
			assert.NoError(t, h.Broken())
		}
	}
	h, _ := s.Covering("production", "frontend", noon)
	assert.Equal(t, "INC-1234 checkout errors by jane since 2026-11-25T10:00:00Z", h.String())
	assert.Equal(t, "production (all apps)", h.Scope())

	none := Load("charts/app-config/holds.yaml", nil, false, nil, chain)
	_, ok := none.Covering("production", "frontend", noon)
	assert.False(t, ok, "no holds file holds nothing")
}

// A file that cannot be read or parsed holds every app everywhere, and
// says why in one line.
func TestFailsClosed(t *testing.T) {
	for name, s := range map[string]*Set{
		"malformed":  Load("charts/app-config/holds.yaml", []byte("holds: [\n"), true, nil, chain),
		"unreadable": Load("charts/app-config/holds.yaml", nil, false, errors.New("read charts/app-config/holds.yaml: object not found"), chain),
		"typo":       Load("charts/app-config/holds.yaml", []byte("holds:\n  - environments: [production]\n    apps: ['*']\n    reasn: x\n"), true, nil, chain),
	} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, s.Err())
			for _, env := range chain {
				h, ok := s.Covering(env, "any-app", noon)
				require.True(t, ok)
				require.Error(t, h.Broken())
				assert.Contains(t, h.Name(), "the holds file charts/app-config/holds.yaml")
				assert.Contains(t, h.Name(), "everything is held until it is fixed")
				assert.NotContains(t, h.Name(), "\n")
				assert.Equal(t, h.Name(), h.String())
			}
		})
	}
}

func TestAddAndRemoveKeepComments(t *testing.T) {
	h := Hold{Environments: []string{"staging"}, Apps: []string{"frontend", "router"}, Reason: "load test",
		By: "ops", Since: noon, Until: noon.Add(2 * time.Hour)}
	out, err := Add([]byte(example), h, chain)
	require.NoError(t, err)
	assert.Contains(t, string(out), "# incident holds")
	assert.Contains(t, string(out), "# the search team's own")
	hs, err := Parse(out, chain)
	require.NoError(t, err)
	require.Len(t, hs, 3)
	assert.True(t, Same(h, hs[2]))
	assert.Equal(t, noon, hs[2].Since)

	out, removed, err := Remove(out, chain, func(x Hold) bool { return x.Within([]string{"production"}, nil) })
	require.NoError(t, err)
	require.Len(t, removed, 1)
	assert.Equal(t, "jane", removed[0].By)
	hs, err = Parse(out, chain)
	require.NoError(t, err)
	assert.Len(t, hs, 2, "the staging+production hold is wider than production: kept")

	same, removed, err := Remove(out, chain, func(Hold) bool { return false })
	require.NoError(t, err)
	assert.Empty(t, removed)
	assert.Equal(t, out, same, "nothing removed, nothing rewritten")
}

func TestAddToNoFile(t *testing.T) {
	h := Hold{Environments: []string{"production"}, Apps: []string{All}, Reason: "INC-1", By: "jane", Since: noon}
	for _, start := range []string{"", "# only a comment\n", "holds:\n"} {
		out, err := Add([]byte(start), h, chain)
		require.NoError(t, err, "%q", start)
		hs, err := Parse(out, chain)
		require.NoError(t, err, "%s", out)
		require.Len(t, hs, 1)
		assert.True(t, Same(h, hs[0]))
	}
	out, err := Add(nil, h, chain)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), header), "a new file says what it is")
	assert.Contains(t, string(out), "environments: [production]")

	_, err = Add([]byte("holds: [\n"), h, chain)
	assert.ErrorIs(t, err, ErrMalformed, "a malformed file is fixed by a person, not edited over")
	_, err = Add(nil, Hold{Environments: []string{"production"}, Apps: []string{All}, By: "jane", Since: noon}, chain)
	assert.ErrorContains(t, err, "reason is required")
}

func TestWithin(t *testing.T) {
	prodAll := Hold{Environments: []string{"production"}, Apps: []string{All}}
	prodA := Hold{Environments: []string{"production"}, Apps: []string{"a"}}
	everywhere := Hold{Environments: []string{All}, Apps: []string{All}}
	assert.True(t, prodAll.Within([]string{"production"}, nil))
	assert.False(t, prodAll.Within([]string{"production"}, []string{"a"}), "a hold on every app is wider than app a")
	assert.True(t, prodA.Within([]string{"production"}, []string{"a", "b"}))
	assert.False(t, prodA.Within([]string{"staging"}, nil))
	assert.False(t, everywhere.Within([]string{"production"}, nil))
	assert.True(t, everywhere.Within([]string{All}, nil))
}

func TestParseUntil(t *testing.T) {
	got, err := ParseUntil("2h", noon)
	require.NoError(t, err)
	assert.Equal(t, noon.Add(2*time.Hour), got)
	got, err = ParseUntil("2026-11-26T09:00:00Z", noon)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), got)
	got, err = ParseUntil("", noon)
	require.NoError(t, err)
	assert.True(t, got.IsZero())
	for _, bad := range []string{"-1h", "0s", "tomorrow", "2026-11-24T09:00:00Z"} {
		_, err := ParseUntil(bad, noon)
		assert.Error(t, err, bad)
	}
}

// The holds file is outside input: whatever it holds, reading it never
// panics, a refusal is one line, and a file that parses can be added to
// and still parses.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte(""))
	f.Add([]byte("holds:\n  - environments: ['*']\n    apps: ['*']\n    reason: x\n    by: y\n    since: 2026-01-01T00:00:00Z\n"))
	f.Add([]byte("holds: [{environments: [production], apps: [a], reason: r, by: b, since: 2026-01-01T00:00:00Z, until: 2027-01-01T00:00:00Z}]"))
	f.Add([]byte("holds: !!binary aGVsbG8=\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := Parse(b, chain)
		s := Load("holds.yaml", b, true, nil, chain)
		h, held := s.Covering("production", "frontend", noon)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.NotContains(t, err.Error(), "\n")
			require.True(t, held, "a malformed file holds everything")
			require.NotContains(t, h.Name(), "\n")
			return
		}
		add := Hold{Environments: []string{"staging"}, Apps: []string{All}, Reason: "fuzz", By: "f", Since: noon}
		out, err := Add(b, add, chain)
		require.NoError(t, err)
		again, err := Parse(out, chain)
		require.NoError(t, err, "%s", out)
		require.Len(t, again, len(hs)+1)
		require.True(t, Same(add, again[len(hs)]))
	})
}
