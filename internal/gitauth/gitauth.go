// Package gitauth is the one place the git remote and its credentials are
// read, for bump-tag and the promoter alike: the auth flags (Flags,
// FromFlags), the promoter's config values under them (Over), and Resolve,
// which turns them into a go-git auth method: an HTTPS token sent as basic
// auth, or an SSH key with host keys checked against a known_hosts file
// (never skipped). It also normalises the repo location (a plain path
// becomes a file:// URL) and reports every secret it read, for redaction.
// Its errors name each setting as the user gave it: a flag for a step, a
// config key for the promoter.
package gitauth

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

// TokenEnv is the environment variable an HTTPS token may come from.
const TokenEnv = "SLIPWAY_GIT_TOKEN"

// Options are the git auth settings.
type Options struct {
	Token      string // from SLIPWAY_GIT_TOKEN
	TokenFile  string // --git-token-file
	Username   string // --git-username, sent with the token (default x-access-token)
	SSHKeyFile string // --ssh-key-file
	KnownHosts string // --known-hosts
	// Names say how the user gave each setting, for errors; an empty name
	// is the setting's flag (FlagNames).
	Names Names
}

// Names are how the user spells each setting.
type Names struct {
	Repo, TokenFile, Username, SSHKeyFile, KnownHosts string
}

// FlagNames are the settings as bump-tag's and the promoter's flags.
var FlagNames = Names{Repo: "--repo", TokenFile: "--git-token-file", Username: "--git-username",
	SSHKeyFile: "--ssh-key-file", KnownHosts: "--known-hosts"}

// name returns the name of one setting: the one given, or its flag's.
func name(given, flag string) string {
	if given != "" {
		return given
	}
	return flag
}

// Flags are the git auth flags of bump-tag and the promoter; each has its
// SLIPWAY_* twin.
func Flags() []cli.Flag {
	env := stepcli.Env
	return []cli.Flag{
		&cli.StringFlag{Name: "git-token-file", EnvVars: env("git-token-file"),
			Usage: "file holding an HTTPS token, sent as basic auth (or set " + TokenEnv + ")"},
		&cli.StringFlag{Name: "git-username", Value: DefaultUsername, EnvVars: env("git-username"),
			Usage: "user name sent with the token"},
		&cli.StringFlag{Name: "ssh-key-file", EnvVars: env("ssh-key-file"), Usage: "private key for an ssh:// or git@host: remote"},
		&cli.StringFlag{Name: "known-hosts", EnvVars: env("known-hosts"),
			Usage: "known_hosts file the SSH host key is checked against (required for SSH; never skipped)"},
	}
}

// FromFlags reads the auth flags and SLIPWAY_GIT_TOKEN. Names holds the
// flag of each setting the user set (by flag or its SLIPWAY_* twin) and
// stays empty for one left at its default, which Over tells apart.
func FromFlags(c *cli.Context) Options {
	o := Options{Token: os.Getenv(TokenEnv), TokenFile: c.String("git-token-file"), Username: c.String("git-username"),
		SSHKeyFile: c.String("ssh-key-file"), KnownHosts: c.String("known-hosts")}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"git-token-file", &o.Names.TokenFile}, {"git-username", &o.Names.Username},
		{"ssh-key-file", &o.Names.SSHKeyFile}, {"known-hosts", &o.Names.KnownHosts}} {
		if c.IsSet(f.name) {
			*f.dst = "--" + f.name
		}
	}
	return o
}

// Over lays the flags (o, from FromFlags) over base, the promoter's config
// values: a setting the user gave as a flag wins, and errors then name the
// flag; otherwise base's value and name hold, and where base has no value
// the flag's default does.
func (o Options) Over(base Options) Options {
	out := Options{Token: o.Token, Names: Names{Repo: base.Names.Repo}}
	out.Names.TokenFile, out.TokenFile = pick(o.Names.TokenFile, o.TokenFile, base.Names.TokenFile, base.TokenFile)
	out.Names.Username, out.Username = pick(o.Names.Username, o.Username, base.Names.Username, base.Username)
	out.Names.SSHKeyFile, out.SSHKeyFile = pick(o.Names.SSHKeyFile, o.SSHKeyFile, base.Names.SSHKeyFile, base.SSHKeyFile)
	out.Names.KnownHosts, out.KnownHosts = pick(o.Names.KnownHosts, o.KnownHosts, base.Names.KnownHosts, base.KnownHosts)
	return out
}

// pick is one setting of Over.
func pick(flagName, flagValue, baseName, baseValue string) (name, value string) {
	switch {
	case flagName != "":
		return flagName, flagValue
	case baseValue != "":
		return baseName, baseValue
	default:
		return baseName, flagValue
	}
}

// Open resolves repo with o (Resolve), registering every secret it read
// with red first, so that no later line can show one; its errors are
// invalid input (exit 2).
func Open(repo string, o Options, red *redact.Redactor) (*Remote, error) {
	red.Add(o.Token)
	remote, err := Resolve(repo, o)
	if remote != nil {
		red.Add(remote.Secrets...)
	}
	if err != nil {
		return nil, exitcode.AsInvalid(err)
	}
	return remote, nil
}

// DefaultUsername is what GitHub expects beside an installation or PAT token.
const DefaultUsername = "x-access-token"

// Remote is a resolved repo location and how to authenticate to it.
type Remote struct {
	URL     string // what go-git is given
	Display string // URL with any password masked, for logs
	Auth    transport.AuthMethod
	Secrets []string // to register with the redactor
}

var (
	scpLike  = regexp.MustCompile(`^(?:[^@/]+@)?[A-Za-z0-9.-]+:[^/\\]`)
	schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)
)

// Resolve validates repo and builds its auth. It reads key and token files
// but touches no network.
func Resolve(repo string, o Options) (*Remote, error) {
	n := o.names()
	if repo == "" {
		return nil, fmt.Errorf("%s is required", n.Repo)
	}
	r := &Remote{}
	token := strings.TrimSpace(o.Token)
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n.TokenFile, err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("%s %s is empty", n.TokenFile, o.TokenFile)
		}
	}
	if token != "" {
		r.Secrets = append(r.Secrets, token)
	}

	scheme, rest, isURL := strings.Cut(repo, "://")
	if isURL {
		// Errors show the URL with its password masked, never repo itself.
		shown := Mask(repo)
		if !schemeRE.MatchString(scheme) {
			return nil, fmt.Errorf("%s %s: not a URL with a scheme (https, ssh, file) nor a path", n.Repo, shown)
		}
		// A '/', '?' or '#' before the last '@' ends the host early: a
		// password that holds one must be percent-encoded. url.Parse would
		// fail (or worse, read the password as a port and a path).
		if at := strings.LastIndex(rest, "@"); at >= 0 && strings.ContainsAny(rest[:at], "/?#") {
			return nil, fmt.Errorf("%s %s: the user or password holds '/', '?', '#' or '@': percent-encode it (%%2F, %%3F, %%23, %%40)", n.Repo, shown)
		}
		u, err := url.Parse(repo)
		if err != nil {
			// err quotes the input: leave it out.
			return nil, fmt.Errorf("%s %s is not a valid URL: percent-encode special characters in the user or password ('%%' is %%25)", n.Repo, shown)
		}
		if err := r.remote(u, shown, token, o); err != nil {
			return nil, err
		}
		r.Display = r.URL
		return r, nil
	}
	switch {
	case scpLike.MatchString(repo) && !filepath.IsAbs(repo):
		user := "git"
		if i := strings.Index(repo, "@"); i > 0 {
			user = repo[:i]
		}
		if strings.Contains(user, ":") {
			return nil, fmt.Errorf("%s %s: an scp-like remote cannot carry a password: authenticate with %s", n.Repo, Mask(repo), n.SSHKeyFile)
		}
		if err := r.ssh(repo, user, o); err != nil {
			return nil, err
		}
	default:
		abs, err := filepath.Abs(repo)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", n.Repo, repo, err)
		}
		r.URL = "file://" + filepath.ToSlash(abs)
	}
	r.Display = r.URL
	return r, nil
}

// names are o's setting names, each defaulting to its flag.
func (o Options) names() Names {
	n, f := o.Names, FlagNames
	return Names{Repo: name(n.Repo, f.Repo), TokenFile: name(n.TokenFile, f.TokenFile), Username: name(n.Username, f.Username),
		SSHKeyFile: name(n.SSHKeyFile, f.SSHKeyFile), KnownHosts: name(n.KnownHosts, f.KnownHosts)}
}

// remote resolves a parsed URL; shown is its masked form, for errors.
func (r *Remote) remote(u *url.URL, shown, token string, o Options) error {
	switch u.Scheme {
	case "https", "http":
		if pw, ok := u.User.Password(); ok {
			r.Secrets = append(r.Secrets, pw)
			if token == "" {
				token = pw
				o.Username = u.User.Username()
			}
		} else if u.User != nil && u.User.Username() != "" {
			// https://TOKEN@host: git hosts take a token as the user name,
			// so a lone user name is a credential too.
			r.Secrets = append(r.Secrets, u.User.Username())
			if token == "" {
				o.Username = u.User.Username()
				r.Auth = &gogithttp.BasicAuth{Username: o.Username}
			}
		}
		u.User = nil // the credentials travel as auth, not in the URL
		r.URL = u.String()
		if token != "" {
			user := o.Username
			if user == "" {
				user = DefaultUsername
			}
			r.Auth = &gogithttp.BasicAuth{Username: user, Password: token}
		}
	case "ssh":
		user := "git"
		if u.User != nil && u.User.Username() != "" {
			user = u.User.Username()
		}
		if pw, ok := u.User.Password(); ok {
			// The key authenticates; a password in the URL is only a secret to keep.
			r.Secrets = append(r.Secrets, pw)
			u.User = url.User(user)
		}
		return r.ssh(u.String(), user, o)
	case "file":
		r.URL = u.String()
	default:
		return fmt.Errorf("%s %s: scheme %q is not supported (https, ssh, file or a path)", o.names().Repo, shown, u.Scheme)
	}
	return nil
}

// ssh sets an SSH remote's URL and key auth, with host keys checked.
func (r *Remote) ssh(repo, user string, o Options) error {
	n := o.names()
	if o.KnownHosts == "" {
		return fmt.Errorf("an ssh remote needs %s: host keys are always checked", n.KnownHosts)
	}
	if o.SSHKeyFile == "" {
		return fmt.Errorf("an ssh remote needs %s", n.SSHKeyFile)
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, "")
	if err != nil {
		return fmt.Errorf("read %s %s: %w", n.SSHKeyFile, o.SSHKeyFile, err)
	}
	cb, err := gitssh.NewKnownHostsCallback(o.KnownHosts)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", n.KnownHosts, o.KnownHosts, err)
	}
	keys.HostKeyCallback = cb
	r.URL, r.Auth = repo, keys
	return nil
}

// Mask returns repo with the password of its user part replaced by ***
// ("https://ci:***@host/x", "git:***@host:x"), whether or not it parses.
func Mask(repo string) string {
	prefix, rest := "", repo
	if scheme, after, ok := strings.Cut(repo, "://"); ok && schemeRE.MatchString(scheme) {
		prefix, rest = scheme+"://", after
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return repo
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		if prefix != "" && prefix != "ssh://" {
			return prefix + "***" + rest[at:] // over https a lone user name may be a token
		}
		return repo
	}
	return prefix + user + ":***" + rest[at:]
}
