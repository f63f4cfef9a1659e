package bumptag

import (
	"strings"
)

// The trailers bump-tag writes besides the app, environment and tags:
// readers (the promoter's rollback memory) find them by these keys.
const (
	// TrailerRollback marks a rollback (kept from before TrailerRollbackFrom).
	TrailerRollback = "Slipway-Rollback"
	// TrailerRollbackFrom is the tag a rollback left.
	TrailerRollbackFrom = "Slipway-Rollback-From"
	// TrailerPreviousTag is the tag the write replaced.
	TrailerPreviousTag = "Slipway-Previous-Tag"
	// TrailerOverrideHold is why a person wrote through a hold.
	TrailerOverrideHold = "Slipway-Override-Hold"
	// TrailerOverriddenHold is the hold written through.
	TrailerOverriddenHold = "Slipway-Overridden-Hold"
)

// Trailers reads the trailers of a commit message: the "Key: value" lines
// of its last paragraph (the first value of a key wins).
func Trailers(msg string) map[string]string {
	paras := strings.Split(strings.TrimSpace(strings.ReplaceAll(msg, "\r\n", "\n")), "\n\n")
	if len(paras) < 2 {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		if _, seen := out[k]; !seen {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// RollbackFrom reads the tag a rollback commit left from its message:
// Slipway-Rollback-From, or from rollbacks written before it existed,
// Slipway-Rollback: true with Slipway-Previous-Tag.
func RollbackFrom(msg string) (string, bool) {
	t := Trailers(msg)
	if from := t[TrailerRollbackFrom]; from != "" {
		return from, true
	}
	if t[TrailerRollback] == "true" && t[TrailerPreviousTag] != "" && t[TrailerPreviousTag] != "none" {
		return t[TrailerPreviousTag], true
	}
	return "", false
}
