package chartsrepo

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/tagfile"
)

func TestTagFile(t *testing.T) {
	l, err := NewLayout("", "", tagfile.Keys{})
	require.NoError(t, err)
	tests := []struct {
		env, app, want, err string
	}{
		{"staging", "frontend", "charts/app-config/image-tags/staging/frontend", ""},
		{"production", "router-api", "charts/app-config/image-tags/production/router-api", ""},
		{"staging", "../etc", "", "app \"../etc\" is not a valid name"},
		{"staging", "Frontend", "", "not a valid name"},
		{"staging", "", "", "not a valid name"},
		{"preview", "frontend", "", "not in the chain integration -> staging -> production"},
		{"../x", "frontend", "", "not a valid name"},
	}
	for _, tt := range tests {
		got, err := tagFile(l, tt.env, tt.app)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	integration, err := l.ParseEnv("integration")
	require.NoError(t, err)
	next, ok := l.Next(integration)
	assert.True(t, ok)
	assert.Equal(t, "staging", next.String())
	production, err := l.ParseEnv("production")
	require.NoError(t, err)
	next, ok = l.Next(production)
	assert.False(t, ok)
	assert.Equal(t, "", next.String())
}

// tagFile parses the names the way every edge does, then asks for the path.
func tagFile(l *Layout, env, app string) (string, error) {
	a, err := ParseApp(app)
	if err != nil {
		return "", err
	}
	e, err := l.ParseEnv(env)
	if err != nil {
		return "", err
	}
	return l.TagFile(e, a)
}

func TestTemplatesThatLeaveTheRepo(t *testing.T) {
	for tmpl, want := range map[string]string{
		"/etc/{{.App}}":        "must be relative",
		"../{{.Env}}/{{.App}}": "leaves the repo",
		"a/../../{{.App}}":     "leaves the repo",
		".git/{{.App}}":        "inside .git",
		"{{.Nope}}":            "path template",
		"charts//{{.App}}":     "not clean",
		"{{if false}}x{{end}}": "empty path",
	} {
		l, err := NewLayout(tmpl, "", tagfile.Keys{})
		require.NoError(t, err, tmpl)
		_, err = tagFile(l, "staging", "frontend")
		assert.ErrorContains(t, err, want, tmpl)
	}
	_, err := NewLayout("{{", "", tagfile.Keys{})
	assert.ErrorContains(t, err, `path template "{{"`)
	_, err = NewLayout("", "a,,b", tagfile.Keys{})
	assert.ErrorContains(t, err, `"" is not a valid environment name`)
	_, err = NewLayout("", "a,b,a", tagfile.Keys{})
	assert.ErrorContains(t, err, "twice")
}

func TestValidateTag(t *testing.T) {
	long := strings.Repeat("a", 128)
	for _, tc := range []struct {
		tag, err string
	}{
		{"v1", ""}, {"abc_1.2-3", ""}, {"_x", ""}, {long, ""}, {"0123456789abcdef0123456789abcdef01234567", ""},
		{"", "not a valid image tag"}, {"v 1", "not a valid image tag"}, {"v1\n", "not a valid image tag"},
		{long + "a", "not a valid image tag"}, {"v1/v2", "not a valid image tag"},
		{".v1", "not a valid image tag"}, {"-v1", "not a valid image tag"},
		// valid Docker tags that cannot name a git branch
		{"..", "not a valid image tag"}, {"v1..2", "cannot name a git branch"},
		{"v1.", "cannot name a git branch"}, {"v1.lock", "cannot name a git branch"},
	} {
		err := ValidateTag(tc.tag)
		if tc.err == "" {
			assert.NoError(t, err, tc.tag)
			continue
		}
		assert.ErrorContains(t, err, tc.err, tc.tag)
	}
}

func TestValidateApp(t *testing.T) {
	for _, tc := range []struct {
		app string
		ok  bool
	}{
		{"frontend", true}, {"collections-publisher", true}, {"a", true}, {"0x", true},
		{strings.Repeat("a", MaxAppLen), true}, {strings.Repeat("a", MaxAppLen+1), false},
		{"my_app", false}, {"app.1", false}, {"", false}, {"..", false}, {"Frontend", false},
		{"a/b", false}, {"-x", false}, {"ünï", false},
	} {
		err := ValidateApp(tc.app)
		if tc.ok {
			assert.NoError(t, err, tc.app)
		} else {
			assert.ErrorContains(t, err, "is not a valid name", tc.app)
		}
	}
}

// A name is checked once, by its Parse function: the same rule and the same
// error as the Validate function, and the value keeps the name as given.
func TestParseNames(t *testing.T) {
	l, err := NewLayout("", "", tagfile.Keys{})
	require.NoError(t, err)
	app, err := ParseApp("frontend")
	require.NoError(t, err)
	assert.Equal(t, "frontend", app.String())
	_, err = ParseApp("../etc")
	assert.EqualError(t, err, ValidateApp("../etc").Error())

	env, err := l.ParseEnv("staging")
	require.NoError(t, err)
	assert.Equal(t, "staging", env.String())
	assert.False(t, env.IsZero())
	assert.True(t, Env{}.IsZero())
	_, err = l.ParseEnv("preview")
	assert.EqualError(t, err, l.ValidateEnv("preview").Error())

	tag, err := ParseTag("v42")
	require.NoError(t, err)
	assert.Equal(t, "v42", tag.String())
	assert.True(t, Tag{}.IsZero())
	_, err = ParseTag("v1..2")
	assert.EqualError(t, err, ValidateTag("v1..2").Error())

	text, err := json.Marshal(map[string]any{"app": app, "env": env, "tag": tag})
	require.NoError(t, err)
	assert.JSONEq(t, `{"app":"frontend","env":"staging","tag":"v42"}`, string(text), "logs and JSON show the name")
}

// The plan lists the repo: each tag file path gives back its environment
// and app; nothing else does.
func TestTagFiles(t *testing.T) {
	l, err := NewLayout("", "", tagfile.Keys{})
	require.NoError(t, err)
	m, err := l.TagFiles()
	require.NoError(t, err)
	assert.Equal(t, []string{"charts/app-config/image-tags/integration", "charts/app-config/image-tags/staging",
		"charts/app-config/image-tags/production"}, m.Dirs())
	for path, want := range map[string]string{
		"charts/app-config/image-tags/staging/frontend":      "staging frontend",
		"charts/app-config/image-tags/production/router-api": "production router-api",
		"charts/app-config/image-tags/preview/frontend":      "",
		"charts/app-config/image-tags/staging/Frontend":      "",
		"charts/app-config/image-tags/staging/a/b":           "",
		"charts/app-config/holds.yaml":                       "",
		"charts/app-config/image-tags/staging/frontend.yaml": "",
		"charts/app-config/image-tags/staging/.hidden-thing": "",
	} {
		env, app, ok := m.Parse(path)
		if want == "" {
			assert.False(t, ok, path)
			continue
		}
		require.True(t, ok, path)
		assert.Equal(t, want, env.String()+" "+app.String())
	}

	other, err := NewLayout("apps/{{.App}}/{{.Env}}.yaml", "", tagfile.Keys{})
	require.NoError(t, err)
	m, err = other.TagFiles()
	require.NoError(t, err)
	assert.Equal(t, []string{"apps"}, m.Dirs())
	env, app, ok := m.Parse("apps/frontend/staging.yaml")
	assert.True(t, ok)
	assert.Equal(t, "staging frontend", env.String()+" "+app.String())

	twice, err := NewLayout("{{.App}}/{{.Env}}/{{.App}}", "", tagfile.Keys{})
	require.NoError(t, err)
	_, err = twice.TagFiles()
	assert.ErrorContains(t, err, "exactly once")
}

func TestHoldsFile(t *testing.T) {
	l, err := NewLayout("", "", tagfile.Keys{})
	require.NoError(t, err)
	assert.Equal(t, DefaultHoldsFile, l.HoldsFile())
	require.NoError(t, l.SetHoldsFile(""))
	assert.Equal(t, DefaultHoldsFile, l.HoldsFile(), "empty keeps the default")
	require.NoError(t, l.SetHoldsFile("ops/holds.yaml"))
	assert.Equal(t, "ops/holds.yaml", l.HoldsFile())
	for _, bad := range []string{"/etc/holds", "../holds.yaml", ".git/holds", "a//b"} {
		assert.Error(t, l.SetHoldsFile(bad), bad)
	}
}
