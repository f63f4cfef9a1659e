// Package assets reads a compiled asset tree from disk: it walks it once,
// hashes each file, names its content type and cache policy, and orders the
// files so that manifests come after everything they point at.
package assets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// ErrInvalidTree marks a problem with the source tree itself (missing, empty,
// an escaping symlink, a name that is not UTF-8): re-running will not help.
var ErrInvalidTree = errors.New("invalid asset tree")

// File is one regular file of the tree.
type File struct {
	// Rel is the path relative to the tree's root with "/" separators: the
	// object key below the destination prefix.
	Rel string
	// Path is where to read it (through any in-tree symlink).
	Path string
	Size int64
}

// Walk lists every regular file under root once. Symlinks are followed only
// when they resolve inside root; one that leads outside it, or a loop, is an
// error wrapping ErrInvalidTree. An empty or missing root is refused too.
func Walk(root string) ([]File, error) {
	info, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: source dir %s does not exist", ErrInvalidTree, root)
		}
		return nil, fmt.Errorf("%w: source dir %s: %v", ErrInvalidTree, root, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%w: source %s is not a directory", ErrInvalidTree, root)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("%w: source dir %s: %v", ErrInvalidTree, root, err)
	}
	realRoot, err = filepath.Abs(realRoot)
	if err != nil {
		return nil, fmt.Errorf("source dir %s: %w", root, err)
	}
	w := &walker{realRoot: realRoot}
	if err := w.dir(realRoot, "", map[string]bool{realRoot: true}); err != nil {
		return nil, err
	}
	if len(w.files) == 0 {
		return nil, fmt.Errorf("%w: source dir %s has no files", ErrInvalidTree, root)
	}
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].Rel < w.files[j].Rel })
	return w.files, nil
}

type walker struct {
	realRoot string
	files    []File
}

// dir reads one directory; onPath holds the real directories from the root
// down to here, to refuse a symlink loop.
func (w *walker) dir(real, rel string, onPath map[string]bool) error {
	entries, err := os.ReadDir(real)
	if err != nil {
		return fmt.Errorf("%w: read %s: %v", ErrInvalidTree, displayRel(rel), err)
	}
	for _, e := range entries {
		name := e.Name()
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		if !utf8.ValidString(name) {
			return fmt.Errorf("%w: %q is not a UTF-8 name", ErrInvalidTree, childRel)
		}
		childPath := filepath.Join(real, name)
		mode := e.Type()
		if mode&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(childPath)
			if err != nil {
				return fmt.Errorf("%w: symlink %s: %v", ErrInvalidTree, childRel, err)
			}
			if !w.inside(target) {
				return fmt.Errorf("%w: symlink %s leads outside the source dir (to %s)", ErrInvalidTree, childRel, target)
			}
			childPath = target
			st, err := os.Stat(target)
			if err != nil {
				return fmt.Errorf("%w: symlink %s: %v", ErrInvalidTree, childRel, err)
			}
			mode = st.Mode().Type()
		}
		switch {
		case mode.IsDir():
			if onPath[childPath] {
				return fmt.Errorf("%w: symlink loop at %s", ErrInvalidTree, childRel)
			}
			onPath[childPath] = true
			err := w.dir(childPath, childRel, onPath)
			delete(onPath, childPath)
			if err != nil {
				return err
			}
		case mode.IsRegular():
			st, err := os.Stat(childPath)
			if err != nil {
				return fmt.Errorf("%w: stat %s: %v", ErrInvalidTree, childRel, err)
			}
			w.files = append(w.files, File{Rel: childRel, Path: childPath, Size: st.Size()})
		default:
			return fmt.Errorf("%w: %s is not a regular file or directory", ErrInvalidTree, childRel)
		}
	}
	return nil
}

func (w *walker) inside(target string) bool {
	rel, err := filepath.Rel(w.realRoot, target)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func displayRel(rel string) string {
	if rel == "" {
		return "source dir"
	}
	return path.Clean(rel)
}
