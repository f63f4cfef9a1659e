package githistory

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// pack is a git packfile held as the server sent it (deltas and all),
// with an index from object hash to its place. Objects are inflated and
// their deltas applied when read, with a bounded cache: memory stays near
// the pack's own size whatever the history's unpacked size (go-git's
// fetch keeps up to 96 MiB of resolved objects while it indexes a pack).
type pack struct {
	data []byte
	objs []entryInPack
	// byHash finds an object by its hash.
	byHash map[plumbing.Hash]int32
}

// reader reads objects from a pack: one per goroutine (a scanner seeks),
// each with its own cache of resolved objects.
type reader struct {
	*pack
	scan  *packfile.Scanner
	cache *cache.BufferLRU
	// scratch takes a delta between reading it and applying it.
	scratch bytes.Buffer
}

func (p *pack) reader(cacheBytes int) *reader {
	return &reader{pack: p, scan: packfile.NewScanner(bytes.NewReader(p.data)), cache: cache.NewBufferLRU(cache.FileSize(cacheBytes))}
}

// entryInPack is one object of the pack.
type entryInPack struct {
	offset int64
	typ    plumbing.ObjectType // for a delta, the type of what it resolves to
	delta  bool
	base   int32 // the delta's base (an index into objs), -1 when none
	// first child and next sibling thread the deltas made on this object.
	child, sibling int32
}

// cacheSize bounds the resolved objects kept for reads.
const cacheSize = 24 << 20

// indexPack reads a packfile's objects, works out every object's hash
// (applying each delta to its base depth first, so that only one chain of
// resolved objects is in memory at a time) and returns the indexed pack.
func indexPack(data []byte) (*pack, error) {
	p := (&pack{data: data}).reader(cacheSize)
	_, count, err := p.scan.Header()
	if err != nil {
		return nil, fmt.Errorf("read pack header: %w", err)
	}
	p.objs = make([]entryInPack, 0, count)
	p.byHash = make(map[plumbing.Hash]int32, count)
	refs := map[plumbing.Hash][]int32{} // deltas on a base named by hash
	for i := range int32(count) {
		oh, err := p.scan.NextObjectHeader()
		if err != nil {
			return nil, fmt.Errorf("read pack object %d: %w", i, err)
		}
		o := entryInPack{offset: oh.Offset, typ: oh.Type, base: -1, child: -1, sibling: -1}
		switch oh.Type {
		case plumbing.OFSDeltaObject:
			o.delta = true
			if o.base = p.at(oh.OffsetReference); o.base < 0 {
				return nil, fmt.Errorf("pack object at %d: its base at %d is not in the pack", oh.Offset, oh.OffsetReference)
			}
		case plumbing.REFDeltaObject:
			o.delta = true
			refs[oh.Reference] = append(refs[oh.Reference], i)
		}
		p.objs = append(p.objs, o)
		if o.base >= 0 {
			p.link(i)
		}
		if o.delta {
			if _, _, err := p.scan.NextObject(io.Discard); err != nil {
				return nil, fmt.Errorf("read pack object %d: %w", i, err)
			}
			continue
		}
		h := newHasher(oh.Type, oh.Length)
		if _, _, err := p.scan.NextObject(h); err != nil {
			return nil, fmt.Errorf("read pack object %d: %w", i, err)
		}
		p.byHash[h.sum()] = i
	}
	if err := p.resolve(refs); err != nil {
		return nil, err
	}
	return p.pack, nil
}

// at is the index of the object at offset, -1 when there is none.
func (p *reader) at(offset int64) int32 {
	i := sort.Search(len(p.objs), func(i int) bool { return p.objs[i].offset >= offset })
	if i < len(p.objs) && p.objs[i].offset == offset {
		return int32(i)
	}
	return -1
}

func (p *reader) link(i int32) {
	b := p.objs[i].base
	p.objs[i].sibling, p.objs[b].child = p.objs[b].child, i
}

// resolve hashes every delta: from each whole object down its deltas.
// refs are deltas whose base is named by hash; they join the tree as
// their base's hash becomes known.
func (p *reader) resolve(refs map[plumbing.Hash][]int32) error {
	attach := func(h plumbing.Hash, base int32) {
		for _, d := range refs[h] {
			p.objs[d].base = base
			p.link(d)
		}
		delete(refs, h)
	}
	for h, i := range p.byHash {
		attach(h, i)
	}
	for i := range p.objs {
		o := &p.objs[i]
		if o.delta || o.child < 0 {
			continue
		}
		content, err := p.inflate(o.offset)
		if err != nil {
			return err
		}
		if err := p.resolveChildren(int32(i), content, attach); err != nil {
			return err
		}
	}
	if len(refs) > 0 {
		return fmt.Errorf("pack has %d deltas on objects it does not hold", len(refs))
	}
	return nil
}

func (p *reader) resolveChildren(i int32, content []byte, attach func(plumbing.Hash, int32)) error {
	for c := p.objs[i].child; c >= 0; c = p.objs[c].sibling {
		delta, err := p.inflateScratch(p.objs[c].offset)
		if err != nil {
			return err
		}
		out, err := packfile.PatchDelta(content, delta)
		if err != nil {
			return fmt.Errorf("apply delta at %d: %w", p.objs[c].offset, err)
		}
		p.objs[c].typ = p.objs[i].typ
		h := newHasher(p.objs[c].typ, int64(len(out)))
		_, _ = h.Write(out)
		sum := h.sum()
		p.byHash[sum] = c
		attach(sum, c)
		if err := p.resolveChildren(c, out, attach); err != nil {
			return err
		}
	}
	return nil
}

// inflate returns the stored bytes of the object at offset (a delta's
// delta, a whole object's content).
func (p *reader) inflate(offset int64) ([]byte, error) {
	var buf bytes.Buffer
	if err := p.inflateInto(&buf, offset); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// inflateScratch is inflate into a buffer reused by the next call: for a
// delta, used at once and dropped.
func (p *reader) inflateScratch(offset int64) ([]byte, error) {
	p.scratch.Reset()
	if err := p.inflateInto(&p.scratch, offset); err != nil {
		return nil, err
	}
	return p.scratch.Bytes(), nil
}

func (p *reader) inflateInto(buf *bytes.Buffer, offset int64) error {
	if _, err := p.scan.SeekObjectHeader(offset); err != nil {
		return fmt.Errorf("read pack object at %d: %w", offset, err)
	}
	if _, _, err := p.scan.NextObject(buf); err != nil {
		return fmt.Errorf("read pack object at %d: %w", offset, err)
	}
	return nil
}

// get returns the content and type of the object with hash h.
func (p *reader) get(h plumbing.Hash) ([]byte, plumbing.ObjectType, error) {
	i, ok := p.byHash[h]
	if !ok {
		return nil, plumbing.InvalidObject, fmt.Errorf("object %s: %w", h, plumbing.ErrObjectNotFound)
	}
	b, err := p.content(i)
	return b, p.objs[i].typ, err
}

// content resolves object i (its base first, from the cache when there).
// Callers must not modify what it returns: the cache shares it.
func (p *reader) content(i int32) ([]byte, error) {
	o := p.objs[i]
	if b, ok := p.cache.Get(o.offset); ok {
		return b, nil
	}
	var out []byte
	if o.delta {
		base, err := p.content(o.base) // first: it reads the pack too
		if err != nil {
			return nil, err
		}
		delta, err := p.inflateScratch(o.offset)
		if err != nil {
			return nil, err
		}
		if out, err = packfile.PatchDelta(base, delta); err != nil {
			return nil, fmt.Errorf("apply delta at %d: %w", o.offset, err)
		}
	} else {
		var err error
		if out, err = p.inflate(o.offset); err != nil {
			return nil, err
		}
	}
	p.cache.Put(o.offset, out)
	return out, nil
}

// hasher computes a git object hash. The pack comes from the charts repo's
// own server over an authenticated connection: plain SHA-1 (with the
// CPU's SHA instructions) rather than go-git's collision-detecting one,
// several times slower on the thousands of trees a history holds.
type hasher struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newHasher(t plumbing.ObjectType, size int64) hasher {
	h := hasher{sha1.New()}
	_, _ = h.h.Write([]byte(t.String() + " " + strconv.FormatInt(size, 10) + "\x00"))
	return h
}

func (h hasher) Write(b []byte) (int, error) { return h.h.Write(b) }

func (h hasher) sum() plumbing.Hash {
	var out plumbing.Hash
	copy(out[:], h.h.Sum(nil))
	return out
}
