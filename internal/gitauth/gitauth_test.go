package gitauth

import (
	"os"
	"path/filepath"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("file-tok\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	r, err := Resolve("https://example.invalid/charts.git", Options{Token: "env-tok"})
	require.NoError(t, err)
	assert.Equal(t, &githttp.BasicAuth{Username: DefaultUsername, Password: "env-tok"}, r.Auth)
	assert.Equal(t, []string{"env-tok"}, r.Secrets)

	r, err = Resolve("https://example.invalid/charts.git", Options{Token: "env-tok", TokenFile: tokenFile, Username: "bot"})
	require.NoError(t, err)
	assert.Equal(t, &githttp.BasicAuth{Username: "bot", Password: "file-tok"}, r.Auth, "the file wins")

	r, err = Resolve("https://ci:url-pw@example.invalid/charts.git", Options{})
	require.NoError(t, err)
	assert.Equal(t, "https://example.invalid/charts.git", r.URL, "credentials leave the URL")
	assert.Equal(t, &githttp.BasicAuth{Username: "ci", Password: "url-pw"}, r.Auth)
	assert.Contains(t, r.Secrets, "url-pw")

	r, err = Resolve("relative/charts", Options{})
	require.NoError(t, err)
	assert.Regexp(t, `^file:///.*/relative/charts$`, r.URL)
	assert.Nil(t, r.Auth)

	r, err = Resolve("file:///srv/charts.git", Options{})
	require.NoError(t, err)
	assert.Equal(t, "file:///srv/charts.git", r.URL)

	for _, tt := range []struct {
		repo string
		o    Options
		err  string
	}{
		{"", Options{}, "--repo is required"},
		{"ftp://x/y", Options{}, "not supported"},
		{"https://x/y", Options{TokenFile: filepath.Join(dir, "missing")}, "--git-token-file"},
		{"https://x/y", Options{TokenFile: empty}, "is empty"},
		{"ssh://git@x/y.git", Options{SSHKeyFile: tokenFile}, "--known-hosts"},
		{"git@github.com:org/charts.git", Options{KnownHosts: tokenFile}, "--ssh-key-file"},
		{"git@github.com:org/charts.git", Options{KnownHosts: tokenFile, SSHKeyFile: tokenFile}, "read --ssh-key-file"},
	} {
		_, err := Resolve(tt.repo, tt.o)
		assert.ErrorContains(t, err, tt.err, tt.repo)
	}
}
