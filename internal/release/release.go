// Package release knows which image tags are releases (promotable) and how
// two releases order, so that no promotion replaces a newer release with an
// older one.
package release

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultPattern matches GOV.UK's release tags: v1, v42, v1796.
const DefaultPattern = `^v[0-9]+$`

// Policy is a compiled release pattern.
type Policy struct {
	re *regexp.Regexp
}

// NewPolicy compiles pattern.
func NewPolicy(pattern string) (*Policy, error) {
	if pattern == "" {
		pattern = DefaultPattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("release pattern %q: %w", pattern, err)
	}
	return &Policy{re: re}, nil
}

// IsRelease reports whether tag is a release (anything else, such as a
// commit SHA from a branch deploy, is deployable but never promoted).
func (p *Policy) IsRelease(tag string) bool { return p.re.MatchString(tag) }

// String is the pattern.
func (p *Policy) String() string { return p.re.String() }

// Compare orders two tags: -1 when a is older than b, 0 equal, +1 newer.
// Runs of digits compare as numbers (v9 < v10, 1.2.9 < 1.2.10), other runs
// as text.
func Compare(a, b string) int {
	for a != "" && b != "" {
		ra, restA := nextRun(a)
		rb, restB := nextRun(b)
		if c := compareRun(ra, rb); c != 0 {
			return c
		}
		a, b = restA, restB
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	default:
		return 1
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func nextRun(s string) (run, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func compareRun(a, b string) int {
	if isDigit(a[0]) && isDigit(b[0]) {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
	}
	return strings.Compare(a, b)
}
