package holds

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// header opens a holds file that Add creates.
const header = `# Holds: while one covers an app in an environment, bump-tag refuses to
# write its tag there (unless --override-hold, recorded in the commit) and
# the promoter waits. Add and remove them as commits, by hand or with
# "promoter hold" and "promoter unhold". A malformed file holds everything.
`

// Add returns the holds file content with h appended (a new file when
// content is empty). The file must parse: a malformed one is fixed by a
// person, not edited over. Comments and other holds are kept.
func Add(content []byte, h Hold, envs []string) ([]byte, error) {
	if err := h.check(envs); err != nil {
		return nil, err
	}
	doc, list, err := open(content, envs)
	if err != nil {
		return nil, err
	}
	var item yaml.Node
	if err := item.Encode(h); err != nil {
		return nil, err
	}
	list.Content = append(list.Content, &item)
	return encode(doc, len(bytes.TrimSpace(content)) == 0)
}

// Remove returns the holds file content without the holds drop selects,
// and the holds it removed.
func Remove(content []byte, envs []string, drop func(Hold) bool) ([]byte, []Hold, error) {
	doc, list, err := open(content, envs)
	if err != nil {
		return nil, nil, err
	}
	var removed []Hold
	kept := list.Content[:0]
	for _, item := range list.Content {
		var h Hold
		if err := item.Decode(&h); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if drop(h) {
			removed = append(removed, h)
			continue
		}
		kept = append(kept, item)
	}
	list.Content = kept
	if len(removed) == 0 {
		return content, nil, nil
	}
	out, err := encode(doc, false)
	return out, removed, err
}

// open parses content (checked by Parse first) into its document node and
// the holds list node, creating both when absent.
func open(content []byte, envs []string) (doc, list *yaml.Node, err error) {
	if _, err := Parse(content, envs); err != nil {
		return nil, nil, err
	}
	doc = &yaml.Node{}
	if err := yaml.Unmarshal(content, doc); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if doc.Kind == 0 {
		doc = &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		// Parse accepted it, so it is an empty value (null): start a map.
		*root = yaml.Node{Kind: yaml.MappingNode, HeadComment: root.HeadComment}
	}
	// Parse allowed no key but holds (a null key aside, which means
	// nothing and is dropped).
	var key *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "holds" && root.Content[i].Tag != "!!null" {
			key, list = root.Content[i], root.Content[i+1]
		}
	}
	if list == nil {
		key, list = &yaml.Node{Kind: yaml.ScalarNode, Value: "holds"}, &yaml.Node{}
	}
	root.Content = []*yaml.Node{key, list}
	if list.Kind != yaml.SequenceNode {
		*list = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	}
	list.Style = 0 // block style, one hold after another
	return doc, list, nil
}

func encode(doc *yaml.Node, fresh bool) ([]byte, error) {
	var buf bytes.Buffer
	if fresh {
		buf.WriteString(header)
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Within reports whether h lies inside the scope envs x apps (All in
// either covers everything; no apps means any): unhold lifts only holds
// it names whole, never a wider one.
func (h Hold) Within(envs, apps []string) bool {
	inside := func(have, scope []string) bool {
		if len(scope) == 0 || slices.Contains(scope, All) {
			return true
		}
		for _, x := range have {
			if !slices.Contains(scope, x) {
				return false
			}
		}
		return true
	}
	return inside(h.Environments, envs) && inside(h.Apps, apps)
}

// Same reports whether a and b are the same hold, times aside: a repeated
// "promoter hold" adds nothing.
func Same(a, b Hold) bool {
	return slices.Equal(a.Environments, b.Environments) && slices.Equal(a.Apps, b.Apps) &&
		a.Reason == b.Reason && a.By == b.By && a.Until.Equal(b.Until)
}

// ParseUntil reads when a hold lifts itself: a duration from now ("2h",
// "90m") or a time (RFC 3339, "2026-11-25T17:00:00Z").
func ParseUntil(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--until %q: want a positive duration or a time", s)
		}
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("--until " + fmt.Sprintf("%q", s) + ": want a duration (2h) or a time (2026-11-25T17:00:00Z)")
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("--until %s is not in the future", s)
	}
	return t, nil
}
