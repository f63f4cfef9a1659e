package gitauth

import (
	"os"
	"path/filepath"
	"testing"

	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/testsupport/sshkey"
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

// A password in --repo never reaches an error, the display name or the URL
// go-git is given, whatever form the URL takes.
func TestPasswordInRepoNeverPrinted(t *testing.T) {
	key, knownHosts := sshkey.Files(t, "git.example.invalid")
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
	key, knownHosts := sshkey.Files(f, "git.example.invalid")
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

// configNames are the promoter's config keys, as promoterserver names them.
var configNames = Names{Repo: "repo.url", TokenFile: "git.tokenFile", Username: "git.username",
	SSHKeyFile: "git.sshKeyFile", KnownHosts: "git.knownHosts"}

// Errors name each setting as the user gave it: the flag by default (a
// step), the config key when Names say so (the promoter).
func TestErrorsNameTheSettingAsGiven(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name     string
		repo     string
		o        Options
		flag, as string
	}{
		{"no repo", "", Options{}, "--repo is required", "repo.url is required"},
		{"token file", "https://x/y", Options{TokenFile: missing}, "read --git-token-file: ", "read git.tokenFile: "},
		{"known hosts", "ssh://git@x/y.git", Options{SSHKeyFile: missing}, "needs --known-hosts", "needs git.knownHosts"},
		{"ssh key", "ssh://git@x/y.git", Options{KnownHosts: missing}, "needs --ssh-key-file", "needs git.sshKeyFile"},
		{"unreadable ssh key", "ssh://git@x/y.git", Options{KnownHosts: missing, SSHKeyFile: missing}, "read --ssh-key-file " + missing, "read git.sshKeyFile " + missing},
		{"scheme", "ftp://x/y", Options{}, "--repo ftp://x/y: scheme", "repo.url ftp://x/y: scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.repo, tc.o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.flag)
			tc.o.Names = configNames
			_, err = Resolve(tc.repo, tc.o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.as)
			assert.NotContains(t, err.Error(), "--", "a config setting is not called a flag")
		})
	}
}

// flagsOf runs a command with the auth flags and returns FromFlags' reading.
func flagsOf(t *testing.T, args ...string) Options {
	t.Helper()
	var got Options
	app := &cli.App{Name: "x", Flags: Flags(), Action: func(c *cli.Context) error { got = FromFlags(c); return nil }}
	require.NoError(t, app.Run(append([]string{"x"}, args...)))
	return got
}

// The promoter's config holds its git settings; a flag the user set wins
// (and is what an error names), a flag left at its default does not.
func TestFlagsOverConfig(t *testing.T) {
	for _, v := range []string{"SLIPWAY_GIT_TOKEN_FILE", "SLIPWAY_GIT_USERNAME", "SLIPWAY_SSH_KEY_FILE", "SLIPWAY_KNOWN_HOSTS"} {
		t.Setenv(v, "") // restored after the test
		require.NoError(t, os.Unsetenv(v))
	}
	t.Setenv(TokenEnv, "env-tok")
	config := Options{TokenFile: "/etc/config-token", SSHKeyFile: "/etc/config-key", Names: configNames}

	none := flagsOf(t)
	assert.Equal(t, Options{Token: "env-tok", Username: DefaultUsername}, none, "defaults, no name given")
	got := none.Over(config)
	assert.Equal(t, Options{Token: "env-tok", TokenFile: "/etc/config-token", Username: DefaultUsername, SSHKeyFile: "/etc/config-key",
		Names: configNames}, got, "the config holds; the user name defaults to the flag's")

	got = flagsOf(t, "--git-token-file", "/run/flag-token", "--git-username", "bot").Over(config)
	assert.Equal(t, "/run/flag-token", got.TokenFile)
	assert.Equal(t, "--git-token-file", got.Names.TokenFile)
	assert.Equal(t, "bot", got.Username)
	assert.Equal(t, "/etc/config-key", got.SSHKeyFile)
	assert.Equal(t, "git.sshKeyFile", got.Names.SSHKeyFile)
	_, err := Resolve("https://x/y", got)
	assert.ErrorContains(t, err, "read --git-token-file: ", "the flag the user gave is named")
	_, err = Resolve("https://x/y", none.Over(config))
	assert.ErrorContains(t, err, "read git.tokenFile: ", "the config key the user gave is named")

	t.Setenv("SLIPWAY_KNOWN_HOSTS", "/run/known")
	got = flagsOf(t).Over(config)
	assert.Equal(t, "/run/known", got.KnownHosts, "an environment twin counts as given")
	assert.Equal(t, "--known-hosts", got.Names.KnownHosts)
}

// Open registers the token before anything can fail, and the secrets it
// read; its errors are invalid input.
func TestOpen(t *testing.T) {
	red := &redact.Redactor{}
	r, err := Open("https://ci:url-S3cret@example.invalid/charts.git", Options{Token: "env-S3cret"}, red)
	require.NoError(t, err)
	assert.Equal(t, "https://example.invalid/charts.git", r.Display)
	assert.Equal(t, "*** and ***", red.String("env-S3cret and url-S3cret"))

	red = &redact.Redactor{}
	_, err = Open("ftp://x/y", Options{Token: "tok-S3cret"}, red)
	assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
	assert.Equal(t, "***", red.String("tok-S3cret"))
}
