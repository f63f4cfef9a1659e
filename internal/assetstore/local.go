package assetstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tmpPrefix names the temporary files Local writes before renaming them into
// place; List ignores leftovers of an interrupted run.
const tmpPrefix = ".slipway-tmp-"

// Local is a folder on this machine (file:///DIR). It has no metadata, so
// content type and cache headers are not kept.
type Local struct {
	Dir string
}

func (l *Local) String() string  { return "file://" + l.Dir }
func (l *Local) PartSize() int64 { return 0 }

// List walks the folder; a folder that does not exist yet is empty.
func (l *Local) List(ctx context.Context) (map[string]Object, error) {
	objs := map[string]Object{}
	err := filepath.WalkDir(l.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == l.Dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(l.Dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		objs[key] = Object{Key: key, Size: info.Size()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l, err)
	}
	return objs, nil
}

// Same compares sizes, then the MD5 of the file already there.
func (l *Local) Same(ctx context.Context, obj Object, c Content) (bool, error) {
	if obj.Size != c.Size {
		return false, nil
	}
	f, err := os.Open(l.path(obj.Key))
	if err != nil {
		return false, fmt.Errorf("compare %s: %w", obj.Key, err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("compare %s: %w", obj.Key, err)
	}
	return bytes.Equal(h.Sum(nil), c.MD5[:]), nil
}

// Put copies body into a temporary file next to its place, then renames
// it there. meta is not kept.
func (l *Local) Put(ctx context.Context, key string, body Body, c Content, _ Metadata) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst := l.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	n, err := io.Copy(tmp, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != c.Size {
		err = fmt.Errorf("size changed while publishing (%d bytes, then %d)", c.Size, n)
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (l *Local) path(key string) string {
	return filepath.Join(l.Dir, filepath.FromSlash(key))
}
