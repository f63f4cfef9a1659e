// Package chartsrepo describes the charts repo: where each environment's tag
// file for an app lives, the chain of environments, and the rules names must
// follow before anything touches the network. App, Env and Tag are names
// that passed those rules (names.go): checked once where they come in, and
// taken as they are by every package after that.
package chartsrepo

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
	"text/template"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// Defaults follow GOV.UK's charts repo.
const (
	DefaultPathTemplate = "charts/app-config/image-tags/{{.Env}}/{{.App}}"
	DefaultChain        = "integration,staging,production"
	// DefaultHoldsFile is where the holds that stop writes live.
	DefaultHoldsFile = "charts/app-config/holds.yaml"
)

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// tagRE is Docker's tag grammar: a word character, then up to 127 of
	// word characters, '.' and '-'.
	tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// MaxAppLen bounds an app name: it becomes a Kubernetes name (a DNS label)
// and a path segment of the charts repo and the asset store.
const MaxAppLen = 63

// Layout is the shape of a charts repo.
type Layout struct {
	pathTmpl *template.Template
	chain    []string
	holds    string
	Keys     tagfile.Keys
}

// NewLayout validates and compiles a path template and an environment chain
// ("integration,staging,production").
func NewLayout(pathTemplate, chain string, keys tagfile.Keys) (*Layout, error) {
	if pathTemplate == "" {
		pathTemplate = DefaultPathTemplate
	}
	tmpl, err := template.New("path").Option("missingkey=error").Parse(pathTemplate)
	if err != nil {
		return nil, fmt.Errorf("path template %q: %w", pathTemplate, err)
	}
	if chain == "" {
		chain = DefaultChain
	}
	var envs []string
	seen := map[string]bool{}
	for _, e := range strings.Split(chain, ",") {
		e = strings.TrimSpace(e)
		if !nameRE.MatchString(e) {
			return nil, fmt.Errorf("environment chain %q: %q is not a valid environment name ([a-z0-9][a-z0-9-]*)", chain, e)
		}
		if seen[e] {
			return nil, fmt.Errorf("environment chain %q: %q appears twice", chain, e)
		}
		seen[e] = true
		envs = append(envs, e)
	}
	if keys == (tagfile.Keys{}) {
		keys = tagfile.DefaultKeys
	}
	return &Layout{pathTmpl: tmpl, chain: envs, holds: DefaultHoldsFile, Keys: keys}, nil
}

// HoldsFile is the repo-relative path of the holds file.
func (l *Layout) HoldsFile() string { return l.holds }

// SetHoldsFile sets where the holds file lives ("" keeps the default); the
// path must stay inside the repo, as a tag file's must.
func (l *Layout) SetHoldsFile(p string) error {
	if p == "" {
		return nil
	}
	clean, err := repoPath("holds file", p)
	if err != nil {
		return err
	}
	l.holds = clean
	return nil
}

// Chain returns the environments in promotion order.
func (l *Layout) Chain() []string { return append([]string(nil), l.chain...) }

// Next returns the environment after env; ok is false for the last one.
func (l *Layout) Next(env Env) (next Env, ok bool) {
	for i, e := range l.chain {
		if e == env.s && i+1 < len(l.chain) {
			return Env{name{l.chain[i+1]}}, true
		}
	}
	return Env{}, false
}

// ValidateApp checks an app name. It is the one app-name rule: every step
// that takes --app (bump-tag, precompile-assets, the promoter) applies it,
// directly or through ParseApp.
func ValidateApp(app string) error {
	if !nameRE.MatchString(app) || len(app) > MaxAppLen {
		return fmt.Errorf("app %q is not a valid name: use at most %d lower-case letters, digits and '-', starting with a letter or digit", app, MaxAppLen)
	}
	return nil
}

// ValidateTag checks an image tag. Besides Docker's grammar, the tag must be
// usable as a git ref name component: the branch strategy pushes a work
// branch named after it, and a tag such as "a..b" or "x.lock" would only
// fail there, after the decision.
func ValidateTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("tag %q is not a valid image tag: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter, digit or '_'", tag)
	}
	if plumbing.NewBranchReferenceName("t/"+tag).Validate() != nil {
		return fmt.Errorf("tag %q cannot name a git branch: no '..', and no '.' or '.lock' at the end", tag)
	}
	return nil
}

// ValidateEnvName checks an environment's name alone, for a step that
// names environments without knowing the chain (notify).
func ValidateEnvName(env string) error {
	if !nameRE.MatchString(env) {
		return fmt.Errorf("environment %q is not a valid name", env)
	}
	return nil
}

// ValidateEnv checks that env is a name in the chain.
func (l *Layout) ValidateEnv(env string) error {
	if err := ValidateEnvName(env); err != nil {
		return err
	}
	for _, e := range l.chain {
		if e == env {
			return nil
		}
	}
	return fmt.Errorf("environment %q is not in the chain %s", env, strings.Join(l.chain, " -> "))
}

// TagFile returns the repo-relative path of env's tag file for app. The
// names are valid by their types; what is checked here is the path the
// template renders, which must stay inside the repo.
func (l *Layout) TagFile(env Env, app App) (string, error) {
	var buf bytes.Buffer
	if err := l.pathTmpl.Execute(&buf, struct{ Env, App string }{env.s, app.s}); err != nil {
		return "", fmt.Errorf("path template: %w", err)
	}
	if buf.Len() == 0 {
		return "", fmt.Errorf("path template renders an empty path")
	}
	return repoPath("tag file path", buf.String())
}

// repoPath checks that p is a clean path inside the repo.
func repoPath(what, p string) (string, error) {
	clean := path.Clean(p)
	switch {
	case p == "" || clean == ".":
		return "", fmt.Errorf("%s is empty", what)
	case path.IsAbs(p) || strings.Contains(p, "\\"):
		return "", fmt.Errorf("%s %q must be relative to the repo", what, p)
	case clean != p || clean == ".." || strings.HasPrefix(clean, "../"):
		return "", fmt.Errorf("%s %q leaves the repo or is not clean", what, p)
	}
	for _, part := range strings.Split(clean, "/") {
		if part == ".git" {
			return "", fmt.Errorf("%s %q is inside .git", what, p)
		}
	}
	return clean, nil
}
