package assets

import (
	"path"
	"strings"
)

// Fingerprinted reports whether a file name carries a content hash, so that
// its content never changes under that name and it may be cached for good:
// "application-6f1a…e2.css" (Sprockets), "logo-1a2b3c4d.png" (Propshaft),
// "main.3f2a1b9c.js" (webpack), "app-5e1c0d7a.digested.js" (jsbundling).
// A hash is a part of the name, after its first part, of 8 to 128 hex digits
// in one case holding both a digit and a letter (so dates and version
// numbers are not taken for hashes). When in doubt the answer is false: a
// short cache is only slower, an immutable one on a changing file is wrong.
func Fingerprinted(rel string) bool {
	name := path.Base(rel)
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '.' || r == '_' })
	for i, p := range parts {
		if i > 0 && isHash(p) {
			return true
		}
	}
	return false
}

func isHash(s string) bool {
	if len(s) < 8 || len(s) > 128 {
		return false
	}
	var digit, lower, upper bool
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case r >= 'a' && r <= 'f':
			lower = true
		case r >= 'A' && r <= 'F':
			upper = true
		default:
			return false
		}
	}
	return digit && (lower != upper)
}
