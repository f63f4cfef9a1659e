package assets

import (
	"fmt"
	"path"
	"strings"
)

// DefaultManifestPatterns names the manifests of Sprockets, Propshaft and
// webpack(er)/jsbundling builds.
const DefaultManifestPatterns = ".sprockets-manifest-*.json,manifest*.json"

// Patterns are shell globs (path.Match). A pattern without "/" matches a
// file's base name anywhere in the tree; one with "/" matches its whole
// relative path.
type Patterns []string

// ParsePatterns reads a comma-separated list; blanks around commas are
// ignored, an empty list matches nothing.
func ParsePatterns(s string) (Patterns, error) {
	var ps Patterns
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("manifest pattern %q: %w", p, err)
		}
		if strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("manifest pattern %q: patterns are relative to the source dir", p)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Match reports whether rel (a "/"-separated relative path) matches any pattern.
func (ps Patterns) Match(rel string) bool {
	for _, p := range ps {
		name := path.Base(rel)
		if strings.Contains(p, "/") {
			name = rel
		}
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
