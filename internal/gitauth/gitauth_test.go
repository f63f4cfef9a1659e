package gitauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("file-tok\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	r, err := Resolve("https://example.invalid/charts.git", Options{Token: "env-tok"})
	require.NoError(t, err)
	assert.Equal(t, &gogithttp.BasicAuth{Username: DefaultUsername, Password: "env-tok"}, r.Auth)
	assert.Equal(t, []string{"env-tok"}, r.Secrets)

	r, err = Resolve("https://example.invalid/charts.git", Options{Token: "env-tok", TokenFile: tokenFile, Username: "bot"})
	require.NoError(t, err)
	assert.Equal(t, &gogithttp.BasicAuth{Username: "bot", Password: "file-tok"}, r.Auth, "the file wins")

	r, err = Resolve("https://ci:url-pw@example.invalid/charts.git", Options{})
	require.NoError(t, err)
	assert.Equal(t, "https://example.invalid/charts.git", r.URL, "credentials leave the URL")
	assert.Equal(t, &gogithttp.BasicAuth{Username: "ci", Password: "url-pw"}, r.Auth)
	assert.Contains(t, r.Secrets, "url-pw")

	r, err = Resolve("https://ghp_tok@example.invalid/charts.git", Options{})
	require.NoError(t, err)
	assert.Equal(t, "https://example.invalid/charts.git", r.URL, "a token given as the user name leaves the URL")
	assert.Equal(t, &gogithttp.BasicAuth{Username: "ghp_tok"}, r.Auth)

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

// sshFiles writes a fresh ed25519 key and a known_hosts file for it.
func sshFiles(t testing.TB) (key, knownHosts string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	dir := t.TempDir()
	key = filepath.Join(dir, "id_ed25519")
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(block), 0o600))
	knownHosts = filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte("git.example.invalid "+string(ssh.MarshalAuthorizedKey(sshPub))), 0o600))
	return key, knownHosts
}

// A password in --repo never reaches an error, the display name or the URL
// go-git is given, whatever form the URL takes.
func TestPasswordInRepoNeverPrinted(t *testing.T) {
	key, knownHosts := sshFiles(t)
	withSSH := Options{SSHKeyFile: key, KnownHosts: knownHosts}
	for _, tc := range []struct {
		name, repo, password string
		o                    Options
		err                  string // "" when the repo is accepted
		display              string
	}{
		{"unsupported scheme", "ftp://ci:ftp-S3cret@example.invalid/charts.git", "ftp-S3cret", Options{}, `scheme "ftp" is not supported`, ""},
		{"percent in password", "https://ci:pa%zzS3cret@example.invalid/charts.git", "pa%zzS3cret", Options{}, "percent-encode", ""},
		{"hash in password", "https://ci:pa#S3cret@example.invalid/charts.git", "pa#S3cret", Options{}, "percent-encode", ""},
		{"slash in password", "https://ci:pa/S3cret@example.invalid/charts.git", "pa/S3cret", Options{}, "percent-encode", ""},
		{"slash in a numeric password", "https://ci:12/S3cret@example.invalid/charts.git", "12/S3cret", Options{}, "percent-encode", ""},
		{"question mark in password", "https://ci:pa?S3cret@example.invalid/charts.git", "pa?S3cret", Options{}, "percent-encode", ""},
		{"ssh password", "ssh://git:ssh-S3cret@git.example.invalid/org/charts.git", "ssh-S3cret", withSSH, "", "ssh://git@git.example.invalid/org/charts.git"},
		{"scp-like with a password", "git:scp-S3cret@git.example.invalid:org/charts.git", "scp-S3cret", withSSH, "cannot carry a password", ""},
		{"token as the user name", "https://ghp_S3cretTokenAsUser@example.invalid/charts.git", "ghp_S3cretTokenAsUser", Options{}, "", "https://example.invalid/charts.git"},
		{"token as the user name, bad scheme", "ftp://ghp_S3cretTokenAsUser@example.invalid/charts.git", "ghp_S3cretTokenAsUser", Options{}, `scheme "ftp" is not supported`, ""},
		{"encoded https password", "https://ci:enc%2FS3cret@example.invalid/charts.git", "enc/S3cret", Options{}, "", "https://example.invalid/charts.git"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Resolve(tc.repo, tc.o)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), tc.password)
				assert.NotContains(t, err.Error(), "S3cret")
				assert.Contains(t, err.Error(), "example.invalid", "the error still names the host")
				assert.NotContains(t, err.Error(), "file://", "not taken as a local path")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.display, r.Display)
			assert.NotContains(t, r.URL, "S3cret")
			assert.Contains(t, r.Secrets, tc.password, "registered for redaction")
		})
	}
}

// FuzzPasswordNeverInError: whatever the password, neither an error nor
// the display name nor the URL shows it.
func FuzzPasswordNeverInError(f *testing.F) {
	for _, seed := range []string{"plain", "p%zz", "p#x", "p/x", "12/x", "p@x", "p:x", "p?x", "%2F", "p x"} {
		f.Add("https", seed)
		f.Add("ssh", seed)
		f.Add("ftp", seed)
	}
	key, knownHosts := sshFiles(f)
	f.Fuzz(func(t *testing.T, scheme, password string) {
		const marker = "Zq9S3cretMark"
		password += marker
		repo := scheme + "://ci:" + password + "@git.example.invalid/org/charts.git"
		r, err := Resolve(repo, Options{SSHKeyFile: key, KnownHosts: knownHosts})
		if err != nil {
			require.NotContains(t, err.Error(), marker)
			return
		}
		require.NotContains(t, r.Display, marker)
		require.NotContains(t, r.URL, marker)
	})
}
