package smokespec

import (
	"fmt"
	"strings"
)

// Lookup finds the value of a ${VAR}; ok is false when it is not set.
type Lookup func(name string) (value string, ok bool)

// expand replaces every ${NAME} in s. "$${" is a literal "${"; a "$" not
// followed by "{" is left as it is. An unset variable or a malformed
// reference is an error naming it.
func expand(s string, lookup Lookup) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated variable reference %q (write $${ for a literal ${)", s[i:])
			}
			name := s[i+2 : i+2+end]
			if !validVarName(name) {
				return "", fmt.Errorf("invalid variable name %q in ${%s}", name, name)
			}
			v, ok := lookup(name)
			if !ok {
				return "", fmt.Errorf("variable ${%s} is not set", name)
			}
			b.WriteString(v)
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
