// Package oneline folds text onto one line: every event a step prints,
// every error line and every commit trailer value is one line, whatever
// the text came from (a driver's multi-line error, a user's input).
package oneline

import "strings"

// Fold replaces every run of white space (newlines and tabs included) with
// one space and trims both ends.
func Fold(s string) string { return strings.Join(strings.Fields(s), " ") }

// Or returns s, or none when s is empty: "runs v42" / "runs no tag".
func Or(s, none string) string {
	if s == "" {
		return none
	}
	return s
}
