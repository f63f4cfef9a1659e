package chartsrepo

import (
	"bytes"
	"fmt"
	"path"
	"strings"
)

// appMarker stands for the app in a rendered path template: it cannot be
// in an app name, so where it lands is where the app's name goes.
const appMarker = "\x00app\x00"

// TagFiles recognises the tag files of a layout among a repo's paths, for
// a reader that lists the repo instead of asking for one app (the plan).
type TagFiles struct {
	l        *Layout
	patterns []pattern
}

// pattern is one environment's tag file path with the app cut out.
type pattern struct {
	env           Env
	before, after string
}

// TagFiles returns the matcher of l's tag files. The path template must
// name the app exactly once, in the file name or a folder.
func (l *Layout) TagFiles() (*TagFiles, error) {
	m := &TagFiles{l: l}
	for _, e := range l.chain {
		var buf bytes.Buffer
		if err := l.pathTmpl.Execute(&buf, struct{ Env, App string }{e, appMarker}); err != nil {
			return nil, fmt.Errorf("path template: %w", err)
		}
		before, after, ok := strings.Cut(buf.String(), appMarker)
		if !ok || strings.Contains(after, appMarker) {
			return nil, fmt.Errorf("path template must name the app ({{.App}}) exactly once to list the apps")
		}
		m.patterns = append(m.patterns, pattern{env: Env{name{e}}, before: before, after: after})
	}
	return m, nil
}

// Parse returns the environment and app whose tag file p is.
func (m *TagFiles) Parse(p string) (Env, App, bool) {
	for _, pt := range m.patterns {
		mid, ok := strings.CutPrefix(p, pt.before)
		if !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, pt.after); !ok {
			continue
		}
		app, err := ParseApp(mid)
		if err != nil {
			continue
		}
		if want, err := m.l.TagFile(pt.env, app); err != nil || want != p {
			continue
		}
		return pt.env, app, true
	}
	return Env{}, App{}, false
}

// Dirs are the folders every tag file lies under (one per environment at
// most): a reader lists only these.
func (m *TagFiles) Dirs() []string {
	var dirs []string
	seen := map[string]bool{}
	for _, pt := range m.patterns {
		d := path.Dir(pt.before + "x")
		if d == "." {
			d = ""
		}
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}
