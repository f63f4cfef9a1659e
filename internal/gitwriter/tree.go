package gitwriter

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// built is a commit made locally: its hash, and every object it added
// (the commit, the trees on the way to the file, the blob), which is all
// a push of it has to send.
type built struct {
	commit  plumbing.Hash
	objects []plumbing.Hash
}

// commit stores a commit on top of parent that sets path to e.Content.
func (w *Writer) commit(parent *object.Commit, path string, e Edit) (built, error) {
	var b built
	s := w.repo.Storer
	blob := s.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	bw, err := blob.Writer()
	if err != nil {
		return b, err
	}
	if _, err := bw.Write(e.Content); err != nil {
		return b, err
	}
	if err := bw.Close(); err != nil {
		return b, err
	}
	blobHash, err := s.SetEncodedObject(blob)
	if err != nil {
		return b, err
	}
	b.objects = append(b.objects, blobHash)
	root, err := putFile(s, parent.TreeHash, strings.Split(path, "/"), blobHash, &b.objects)
	if err != nil {
		return b, fmt.Errorf("build tree for %s: %w", path, err)
	}
	now := w.o.Now()
	sig := object.Signature{Name: w.o.AuthorName, Email: w.o.AuthorEmail, When: now}
	c := &object.Commit{
		Author: sig, Committer: sig, Message: e.Message,
		TreeHash: root, ParentHashes: []plumbing.Hash{parent.Hash},
	}
	obj := s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return b, err
	}
	if b.commit, err = s.SetEncodedObject(obj); err != nil {
		return b, err
	}
	b.objects = append(b.objects, b.commit)
	return b, nil
}

// diff is the unified diff of commit against its parent.
func (w *Writer) diff(parent *object.Commit, commit plumbing.Hash) (string, error) {
	c, err := object.GetCommit(w.repo.Storer, commit)
	if err != nil {
		return "", err
	}
	patch, err := parent.Patch(c)
	if err != nil {
		return "", fmt.Errorf("diff: %w", err)
	}
	return patch.String(), nil
}

// putFile returns the hash of the tree `root` with the file at parts set to
// blob, writing every tree on the way down anew (added to written). A
// zero root is an empty tree.
func putFile(s storer.EncodedObjectStorer, root plumbing.Hash, parts []string, blob plumbing.Hash, written *[]plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !root.IsZero() {
		t, err := object.GetTree(s, root)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, t.Entries...)
	}
	name := parts[0]
	idx := -1
	for i, e := range entries {
		if e.Name == name {
			idx = i
			break
		}
	}
	var entry object.TreeEntry
	if len(parts) == 1 {
		mode := filemode.Regular
		if idx >= 0 {
			switch entries[idx].Mode {
			case filemode.Executable, filemode.Regular, filemode.Deprecated:
				mode = entries[idx].Mode
			default:
				return plumbing.ZeroHash, fmt.Errorf("%s is not a regular file", name)
			}
		}
		entry = object.TreeEntry{Name: name, Mode: mode, Hash: blob}
	} else {
		sub := plumbing.ZeroHash
		if idx >= 0 {
			if entries[idx].Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s is a file, not a folder", name)
			}
			sub = entries[idx].Hash
		}
		h, err := putFile(s, sub, parts[1:], blob, written)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entry = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if idx >= 0 {
		entries[idx] = entry
	} else {
		entries = append(entries, entry)
	}
	// git orders entries by name, a folder's name compared as if it ended in "/".
	sort.Slice(entries, func(i, j int) bool { return sortKey(entries[i]) < sortKey(entries[j]) })
	t := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := s.SetEncodedObject(obj)
	*written = append(*written, h)
	return h, err
}

func sortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}
