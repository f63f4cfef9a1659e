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
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
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

var scpLike = regexp.MustCompile(`^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:[^/\\]`)

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

	u, err := url.Parse(repo)
	isURL := err == nil && u.Scheme != "" && strings.Contains(repo, "://")
	switch {
	case isURL && (u.Scheme == "https" || u.Scheme == "http"):
		if pw, ok := u.User.Password(); ok {
			r.Secrets = append(r.Secrets, pw)
			if token == "" {
				token = pw
				o.Username = u.User.Username()
			}
			u.User = nil // the credentials travel as auth, not in the URL
		}
		r.URL = u.String()
		if token != "" {
			user := o.Username
			if user == "" {
				user = DefaultUsername
			}
			r.Auth = &githttp.BasicAuth{Username: user, Password: token}
		}
	case isURL && u.Scheme == "ssh", !isURL && scpLike.MatchString(repo) && !filepath.IsAbs(repo):
		if o.KnownHosts == "" {
			return nil, fmt.Errorf("an ssh remote needs --known-hosts: host keys are always checked")
		}
		if o.SSHKeyFile == "" {
			return nil, fmt.Errorf("an ssh remote needs --ssh-key-file")
		}
		user := "git"
		if isURL && u.User != nil && u.User.Username() != "" {
			user = u.User.Username()
		} else if i := strings.Index(repo, "@"); !isURL && i > 0 {
			user = repo[:i]
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("read --ssh-key-file %s: %w", o.SSHKeyFile, err)
		}
		cb, err := gitssh.NewKnownHostsCallback(o.KnownHosts)
		if err != nil {
			return nil, fmt.Errorf("read --known-hosts %s: %w", o.KnownHosts, err)
		}
		keys.HostKeyCallback = cb
		r.URL, r.Auth = repo, keys
	case isURL && u.Scheme == "file":
		r.URL = repo
	case isURL:
		return nil, fmt.Errorf("--repo %q: scheme %q is not supported (https, ssh, file or a path)", repo, u.Scheme)
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
