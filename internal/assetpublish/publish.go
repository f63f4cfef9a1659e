// Package assetpublish is the precompile-assets step: Run checks the
// flags, runs the app's asset build, then publishes the tree to a store
// (package assetstore): walk and hash the whole tree first (so bad input is
// refused before anything is written), list the destination once, upload
// what differs concurrently, and upload manifests only after every other
// object made it. It never deletes.
package assetpublish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/slipway-deploy/slipway/internal/assets"
	"github.com/slipway-deploy/slipway/internal/assetstore"
	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// options are a checked publication.
type options struct {
	sourceDir   string
	store       assetstore.Store
	policy      assets.Policy
	concurrency int
	// dryRun lists what would be uploaded on out and writes nothing.
	dryRun bool
	out    io.Writer
	log    *slog.Logger
}

// publish runs one publication. Errors carry exit codes: 2 for a bad tree or
// a missing bucket, 1 for anything a re-run may fix.
func publish(ctx context.Context, o options) (Result, error) {
	res := Result{Destination: o.store.String(), DryRun: o.dryRun, counted: true}
	files, err := assets.Walk(o.sourceDir)
	if err != nil {
		return res, exitcode.AsInvalid(err)
	}
	o.policy.PartSize = o.store.PartSize()
	// List the destination while the tree is hashed: both take a while.
	listCtx, stopList := context.WithCancel(ctx)
	defer stopList()
	type listing struct {
		objs map[string]assetstore.Object
		err  error
	}
	listed := make(chan listing, 1)
	go func() {
		objs, err := o.store.List(listCtx)
		listed <- listing{objs, err}
	}()
	all, err := inspectAll(ctx, o.policy, files)
	if err != nil {
		stopList()
		<-listed
		return res, err
	}
	l := <-listed
	remote, err := l.objs, l.err
	if err != nil {
		if errors.Is(err, assetstore.ErrNoBucket) || errors.Is(err, assetstore.ErrRefused) {
			return res, exitcode.AsInvalid(err)
		}
		return res, err
	}
	o.log.Info("publishing", "source", o.sourceDir, "destination", res.Destination,
		"files", len(all), "existing", len(remote), "dry_run", o.dryRun)

	var rest, manifests []assets.Asset
	for _, a := range all {
		if a.Manifest {
			manifests = append(manifests, a)
		} else {
			rest = append(rest, a)
		}
	}
	p := &publisher{o: o, remote: remote}
	p.run(ctx, rest)
	if p.failed.Load() == 0 && ctx.Err() == nil {
		p.run(ctx, manifests)
	}
	res.Uploaded, res.Skipped = int(p.uploaded.Load()), int(p.skipped.Load())
	res.Failed, res.Bytes = int(p.failed.Load()), p.bytes.Load()
	if res.Failed > 0 || ctx.Err() != nil {
		missing := len(all) - res.Uploaded - res.Skipped
		msg := fmt.Sprintf("%d of %d objects did not make it to %s", missing, len(all), res.Destination)
		if len(manifests) > 0 && p.failed.Load() > 0 {
			msg += fmt.Sprintf(" (%d manifests held back until every asset is there)", len(manifests))
		}
		if first := p.firstErr(); first != nil {
			msg += fmt.Sprintf("; first error: %v", first)
		} else if ctx.Err() != nil {
			msg += fmt.Sprintf(": %v", ctx.Err())
		}
		return res, exitcode.Failedf("%s; a re-run uploads only what is missing", msg)
	}
	return res, nil
}

// inspectAll hashes every file before anything is written: an unreadable
// file is bad input, refused with nothing uploaded.
func inspectAll(ctx context.Context, pol assets.Policy, files []assets.File) ([]assets.Asset, error) {
	rels := make(map[string]bool, len(files))
	for _, f := range files {
		rels[f.Rel] = true
	}
	out := make([]assets.Asset, len(files))
	errs := make([]error, len(files))
	forEach(ctx, len(files), 2*runtime.GOMAXPROCS(0), func(i int) {
		out[i], errs[i] = pol.Inspect(files[i], rels)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var bad int
	var first error
	for _, err := range errs {
		if err != nil {
			bad++
			if first == nil {
				first = err
			}
		}
	}
	if bad > 0 {
		return nil, exitcode.Invalidf("%d of %d files could not be read, nothing uploaded: %w", bad, len(files), first)
	}
	return out, nil
}

type publisher struct {
	o      options
	remote map[string]assetstore.Object

	uploaded, skipped, failed atomic.Int64
	bytes                     atomic.Int64
	mu                        sync.Mutex
	first                     error
	out                       sync.Mutex
}

func (p *publisher) run(ctx context.Context, list []assets.Asset) {
	forEach(ctx, len(list), p.o.concurrency, func(i int) { p.one(ctx, list[i]) })
}

func (p *publisher) one(ctx context.Context, a assets.Asset) {
	if obj, ok := p.remote[a.Rel]; ok {
		same, err := p.o.store.Same(ctx, obj, content(a))
		if err != nil {
			p.fail(err)
			return
		}
		if same {
			p.skipped.Add(1)
			return
		}
	}
	if p.o.dryRun {
		p.out.Lock()
		fmt.Fprintf(p.o.out, "would upload %s (%d bytes, %s, %s%s)\n", a.Rel, a.Size, a.ContentType,
			a.CacheControl, encodingNote(a.ContentEncoding))
		p.out.Unlock()
		p.uploaded.Add(1)
		p.bytes.Add(a.Size)
		return
	}
	if err := p.put(ctx, a); err != nil {
		p.fail(err)
		return
	}
	p.o.log.Debug("uploaded", "key", a.Rel, "bytes", a.Size, "content_type", a.ContentType)
	p.uploaded.Add(1)
	p.bytes.Add(a.Size)
}

// put uploads a from its file.
func (p *publisher) put(ctx context.Context, a assets.Asset) error {
	f, err := os.Open(a.Path)
	if err != nil {
		return fmt.Errorf("put %s: %w", a.Rel, err)
	}
	defer f.Close()
	return p.o.store.Put(ctx, a.Rel, f, content(a), assetstore.Metadata{
		ContentType: a.ContentType, CacheControl: a.CacheControl, ContentEncoding: a.ContentEncoding})
}

// content is what the store compares and checks of a's bytes.
func content(a assets.Asset) assetstore.Content {
	return assetstore.Content{Size: a.Size, MD5: a.MD5, PartMD5s: a.PartMD5s}
}

func encodingNote(enc string) string {
	if enc == "" {
		return ""
	}
	return ", Content-Encoding " + enc
}

func (p *publisher) fail(err error) {
	p.failed.Add(1)
	p.o.log.Warn("upload failed", "error", err)
	p.mu.Lock()
	if p.first == nil {
		p.first = err
	}
	p.mu.Unlock()
}

func (p *publisher) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// forEach calls fn(i) for i in [0, n) on up to workers goroutines, stopping
// early when ctx is done.
func forEach(ctx context.Context, n, workers int, fn func(int)) {
	if workers > n {
		workers = n
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}
