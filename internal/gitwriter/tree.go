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

// commit stores a commit on top of parent that sets path to e.Content, and
// returns it with the unified diff of the change.
func (w *Writer) commit(parent *object.Commit, path string, e Edit) (plumbing.Hash, string, error) {
	s := w.repo.Storer
	blob := s.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	bw, err := blob.Writer()
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	if _, err := bw.Write(e.Content); err != nil {
		return plumbing.ZeroHash, "", err
	}
	if err := bw.Close(); err != nil {
		return plumbing.ZeroHash, "", err
	}
	blobHash, err := s.SetEncodedObject(blob)
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	root, err := putFile(s, parent.TreeHash, strings.Split(path, "/"), blobHash)
	if err != nil {
		return plumbing.ZeroHash, "", fmt.Errorf("build tree for %s: %w", path, err)
	}
	now := w.o.Now()
	sig := object.Signature{Name: w.o.AuthorName, Email: w.o.AuthorEmail, When: now}
	c := &object.Commit{
		Author: sig, Committer: sig, Message: e.Message,
		TreeHash: root, ParentHashes: []plumbing.Hash{parent.Hash},
	}
	obj := s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, "", err
	}
	hash, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	newCommit, err := object.GetCommit(s, hash)
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	patch, err := parent.Patch(newCommit)
	if err != nil {
		return plumbing.ZeroHash, "", fmt.Errorf("diff: %w", err)
	}
	return hash, patch.String(), nil
}

// putFile returns the hash of the tree `root` with the file at parts set to
// blob, writing every tree on the way down anew. A zero root is an empty tree.
func putFile(s storer.EncodedObjectStorer, root plumbing.Hash, parts []string, blob plumbing.Hash) (plumbing.Hash, error) {
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
		h, err := putFile(s, sub, parts[1:], blob)
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
	return s.SetEncodedObject(obj)
}

func sortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}
