package chartsrepo

import (
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
		got, err := l.TagFile(tt.env, tt.app)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	assert.Equal(t, "staging", l.Next("integration"))
	assert.Equal(t, "", l.Next("production"))
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
		_, err = l.TagFile("staging", "frontend")
		assert.ErrorContains(t, err, want, tmpl)
	}
	_, err := NewLayout("{{", "", tagfile.Keys{})
	assert.Error(t, err)
	_, err = NewLayout("", "a,,b", tagfile.Keys{})
	assert.Error(t, err)
	_, err = NewLayout("", "a,b,a", tagfile.Keys{})
	assert.ErrorContains(t, err, "twice")
}

func TestValidateTag(t *testing.T) {
	for tag, ok := range map[string]bool{"v1": true, "abc_1.2-3": true, "v 1": false, "v1\n": false, "": false, string(make([]byte, 129)): false} {
		if ok {
			assert.NoError(t, ValidateTag(tag), tag)
		} else {
			assert.Error(t, ValidateTag(tag), tag)
		}
	}
}
