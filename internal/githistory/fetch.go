// Package githistory reads one branch of a remote repository, history
// included, in a single fetch, and walks it once for many files at a time.
// It is the reader behind `promoter plan`: a whole charts repo (thousands
// of tag files, thousands of commits) in one pass, within a bounded amount
// of memory. The pack is kept as the server sent it and objects are
// resolved when read; the walk compares each commit's tree with its
// parent's by hash and descends only into folders that changed.
package githistory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// Options say what to fetch.
type Options struct {
	URL    string
	Auth   transport.AuthMethod
	Branch string // default main
	// Depth bounds the commits fetched (0: the whole history).
	Depth int
}

// ErrBranchNotFound is wrapped when the remote has no such branch.
var ErrBranchNotFound = errors.New("branch not found")

// Repo is a fetched branch: its head and the objects of its history.
type Repo struct {
	head plumbing.Hash
	pack *pack
	// PackBytes is the size of the pack as fetched.
	PackBytes int
}

// Fetch downloads the branch (its last o.Depth commits, or all) in one
// request after the ref advertisement, and indexes it.
func Fetch(ctx context.Context, o Options) (*Repo, error) {
	if o.Branch == "" {
		o.Branch = "main"
	}
	ep, err := transport.NewEndpoint(o.URL)
	if err != nil {
		return nil, fmt.Errorf("charts repo URL: %w", err)
	}
	c, err := client.NewClient(ep)
	if err != nil {
		return nil, fmt.Errorf("charts repo URL: %w", err)
	}
	s, err := c.NewUploadPackSession(ep, o.Auth)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", o.Branch, err)
	}
	defer s.Close()
	adv, err := s.AdvertisedReferencesContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", o.Branch, err)
	}
	refs, err := adv.AllReferences()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", o.Branch, err)
	}
	ref, ok := refs[plumbing.NewBranchReferenceName(o.Branch)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBranchNotFound, o.Branch)
	}
	data, err := fetchPack(ctx, s, adv, ref.Hash(), o.Depth)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", o.Branch, err)
	}
	p, err := indexPack(data)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", o.Branch, err)
	}
	return &Repo{head: ref.Hash(), pack: p, PackBytes: len(data)}, nil
}

func fetchPack(ctx context.Context, s transport.UploadPackSession, adv *packp.AdvRefs, head plumbing.Hash, depth int) ([]byte, error) {
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	req.Wants = []plumbing.Hash{head}
	if depth > 0 {
		req.Depth = packp.DepthCommits(depth)
		if err := req.Capabilities.Set(capability.Shallow); err != nil {
			return nil, err
		}
	}
	if adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return nil, err
		}
	}
	resp, err := s.UploadPack(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Close()
	var r io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Head is the branch's commit.
func (r *Repo) Head() string { return r.head.String() }
