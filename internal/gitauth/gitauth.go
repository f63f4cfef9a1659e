// Package gitauth turns the git auth flags shared by bump-tag and the
// promoter into a go-git auth method: an HTTPS token sent as basic auth, or
// an SSH key with host keys checked against a known_hosts file (never
// skipped). It also normalises the repo location (a plain path becomes a
// file:// URL) and reports every secret it read, for redaction.
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
)

// Options are the git auth flags.
type Options struct {
	Token      string // from SLIPWAY_GIT_TOKEN
	TokenFile  string // --git-token-file
	Username   string // --git-username, sent with the token (default x-access-token)
	SSHKeyFile string // --ssh-key-file
	KnownHosts string // --known-hosts
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
	if repo == "" {
		return nil, fmt.Errorf("--repo is required")
	}
	r := &Remote{}
	token := strings.TrimSpace(o.Token)
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("read --git-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("--git-token-file %s is empty", o.TokenFile)
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
			return nil, fmt.Errorf("--repo %s: not a URL with a scheme (https, ssh, file) nor a path", shown)
		}
		// A '/', '?' or '#' before the last '@' ends the host early: a
		// password that holds one must be percent-encoded. url.Parse would
		// fail (or worse, read the password as a port and a path).
		if at := strings.LastIndex(rest, "@"); at >= 0 && strings.ContainsAny(rest[:at], "/?#") {
			return nil, fmt.Errorf("--repo %s: the user or password holds '/', '?', '#' or '@': percent-encode it (%%2F, %%3F, %%23, %%40)", shown)
		}
		u, err := url.Parse(repo)
		if err != nil {
			// err quotes the input: leave it out.
			return nil, fmt.Errorf("--repo %s is not a valid URL: percent-encode special characters in the user or password ('%%' is %%25)", shown)
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
			return nil, fmt.Errorf("--repo %s: an scp-like remote cannot carry a password: authenticate with --ssh-key-file", Mask(repo))
		}
		if err := r.ssh(repo, user, o); err != nil {
			return nil, err
		}
	default:
		abs, err := filepath.Abs(repo)
		if err != nil {
			return nil, fmt.Errorf("--repo %q: %w", repo, err)
		}
		r.URL = "file://" + filepath.ToSlash(abs)
	}
	r.Display = r.URL
	return r, nil
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
		return fmt.Errorf("--repo %s: scheme %q is not supported (https, ssh, file or a path)", shown, u.Scheme)
	}
	return nil
}

// ssh sets an SSH remote's URL and key auth, with host keys checked.
func (r *Remote) ssh(repo, user string, o Options) error {
	if o.KnownHosts == "" {
		return fmt.Errorf("an ssh remote needs --known-hosts: host keys are always checked")
	}
	if o.SSHKeyFile == "" {
		return fmt.Errorf("an ssh remote needs --ssh-key-file")
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, "")
	if err != nil {
		return fmt.Errorf("read --ssh-key-file %s: %w", o.SSHKeyFile, err)
	}
	cb, err := gitssh.NewKnownHostsCallback(o.KnownHosts)
	if err != nil {
		return fmt.Errorf("read --known-hosts %s: %w", o.KnownHosts, err)
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
