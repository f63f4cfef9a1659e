// Package holds reads and edits the holds file of the charts repo
// (charts/app-config/holds.yaml by default): stop-the-line holds, each
// covering some environments and apps, with who set it, why, since when
// and, optionally, until when. While a hold covers an app in an
// environment, bump-tag refuses to write there (unless overridden) and the
// promoter waits. The file is outside input: Load never fails, and a file
// that cannot be read or parsed holds everything (fail closed), saying why.
package holds

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/oneline"
)

// All in a hold's environments or apps covers every one.
const All = "*"

// MaxSize bounds the holds file: a bigger one is malformed (it is a list
// of a few holds, read on every write).
const MaxSize = 256 << 10

// Hold is one entry of the holds file.
type Hold struct {
	Environments []string  `yaml:"environments,flow"`
	Apps         []string  `yaml:"apps,flow"`
	Reason       string    `yaml:"reason"`
	By           string    `yaml:"by"`
	Since        time.Time `yaml:"since"`
	// Until, when set, is when the hold lifts itself.
	Until time.Time `yaml:"until,omitempty"`

	// broken is why the holds file could not be read: a hold made of it
	// covers everything.
	broken error
}

// file is the holds file as written.
type file struct {
	Holds []Hold `yaml:"holds"`
}

// ErrMalformed is wrapped by every reason the holds file is refused.
var ErrMalformed = errors.New("malformed holds file")

// Parse reads a holds file strictly (unknown keys, a missing field, an
// environment outside envs when envs is given: all malformed). An empty
// file holds nothing.
func Parse(b []byte, envs []string) ([]Hold, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, oneline.Fold(err.Error()))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrMalformed)
	}
	for i, h := range f.Holds {
		if err := h.check(envs); err != nil {
			return nil, fmt.Errorf("%w: holds[%d]: %v", ErrMalformed, i, err)
		}
	}
	return f.Holds, nil
}

// check is one hold's own rules.
func (h Hold) check(envs []string) error {
	if len(h.Environments) == 0 {
		return fmt.Errorf("environments is required (a list, %q for all)", All)
	}
	for _, e := range h.Environments {
		if e == All {
			continue
		}
		if err := chartsrepo.ValidateEnvName(e); err != nil {
			return err
		}
		if envs != nil && !slices.Contains(envs, e) {
			return fmt.Errorf("environment %q is not in the chain %s", e, strings.Join(envs, " -> "))
		}
	}
	if len(h.Apps) == 0 {
		return fmt.Errorf("apps is required (a list, %q for all)", All)
	}
	for _, a := range h.Apps {
		if a == All {
			continue
		}
		if err := chartsrepo.ValidateApp(a); err != nil {
			return err
		}
	}
	switch {
	case strings.TrimSpace(h.Reason) == "":
		return errors.New("reason is required")
	case strings.TrimSpace(h.By) == "":
		return errors.New("by is required (who set the hold)")
	case h.Since.IsZero():
		return errors.New("since is required (when the hold was set, e.g. 2026-11-25T10:00:00Z)")
	case !h.Until.IsZero() && !h.Until.After(h.Since):
		return errors.New("until must be after since")
	}
	return nil
}

// Set is the holds file as read at one head.
type Set struct {
	path  string
	holds []Hold
	err   error
}

// Load makes the Set of a holds file read at some head: content and
// whether it exists, or the error reading it. It never fails: a file that
// cannot be read or parsed makes a Set that holds everything.
func Load(path string, content []byte, exists bool, readErr error, envs []string) *Set {
	s := &Set{path: path}
	switch {
	case readErr != nil:
		s.err = fmt.Errorf("cannot be read: %s", oneline.Fold(readErr.Error()))
	case exists:
		if s.holds, s.err = Parse(content, envs); s.err != nil {
			s.err = fmt.Errorf("is malformed (%s)", strings.TrimPrefix(s.err.Error(), ErrMalformed.Error()+": "))
		}
	}
	return s
}

// Err is why the file holds everything, nil when it was read.
func (s *Set) Err() error { return s.err }

// Holds are the file's holds, expired ones included.
func (s *Set) Holds() []Hold { return s.holds }

// Covering returns the hold that covers app in env at now: the first in
// the file that does, expired ones skipped. A Set that could not be read
// covers everything, with a hold that says why.
func (s *Set) Covering(env, app string, now time.Time) (Hold, bool) {
	if s == nil {
		return Hold{}, false
	}
	if s.err != nil {
		return Hold{Environments: []string{All}, Apps: []string{All},
			broken: fmt.Errorf("the holds file %s %w: everything is held until it is fixed", s.path, s.err)}, true
	}
	for _, h := range s.holds {
		if h.Covers(env, app) && h.Active(now) {
			return h, true
		}
	}
	return Hold{}, false
}

// Covers reports whether h names env and app (or all of them).
func (h Hold) Covers(env, app string) bool {
	return (slices.Contains(h.Environments, All) || slices.Contains(h.Environments, env)) &&
		(slices.Contains(h.Apps, All) || slices.Contains(h.Apps, app))
}

// Active reports whether h still holds at now: until it lifts itself.
// Since only records when it was set: a hold is honoured at once, whatever
// the clocks of the machine that wrote it and the one that reads it.
func (h Hold) Active(now time.Time) bool { return h.Until.IsZero() || now.Before(h.Until) }

// Broken is why the holds file could not be read, for a hold made of it.
func (h Hold) Broken() error { return h.broken }

// Name is the hold as a person calls it: its reason and who set it
// ("INC-1234 by jane"), or why the holds file holds everything.
func (h Hold) Name() string {
	if h.broken != nil {
		return h.broken.Error()
	}
	return oneline.Fold(h.Reason) + " by " + oneline.Fold(h.By)
}

// String is the hold in one line: its name, since when and until when.
func (h Hold) String() string {
	if h.broken != nil {
		return h.Name()
	}
	s := h.Name() + " since " + h.Since.UTC().Format(time.RFC3339)
	if !h.Until.IsZero() {
		s += " until " + h.Until.UTC().Format(time.RFC3339)
	}
	return s
}

// Scope is the environments and apps it covers, for messages
// ("production, all apps").
func (h Hold) Scope() string {
	apps := "all apps"
	if !slices.Contains(h.Apps, All) {
		apps = strings.Join(h.Apps, ", ")
	}
	envs := strings.Join(h.Environments, ", ")
	if slices.Contains(h.Environments, All) {
		envs = "all environments"
	}
	return envs + " (" + apps + ")"
}
