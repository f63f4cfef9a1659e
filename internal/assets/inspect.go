package assets

import (
	"crypto/md5"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
)

// Policy says how files become objects: which are manifests, which cache
// header each gets, whether .gz/.br siblings are served as encodings.
type Policy struct {
	Manifests Patterns
	// CacheControl is for fingerprinted files (a content hash in the name);
	// CacheControlUnfingerprinted for the rest, manifests included.
	CacheControl                string
	CacheControlUnfingerprinted string
	// EncodingSiblings: "x.js.gz" next to "x.js" is uploaded with
	// Content-Encoding gzip and x.js's content type (".br": br).
	EncodingSiblings bool
	// PartSize, when above 0, makes Inspect also hash each PartSize slice of
	// files larger than it, so a store can predict a multipart ETag.
	PartSize int64
}

// Asset is a file with everything its upload needs.
type Asset struct {
	File
	MD5 [md5.Size]byte
	// PartMD5s holds the MD5 of each PartSize slice, for files above PartSize.
	PartMD5s        [][md5.Size]byte
	ContentType     string
	CacheControl    string
	ContentEncoding string
	Manifest        bool
}

// Split puts manifests last: rest are uploaded first, manifests only after
// every one of rest made it.
func (p Policy) Split(files []File) (rest, manifests []File) {
	for _, f := range files {
		if p.Manifests.Match(f.Rel) {
			manifests = append(manifests, f)
		} else {
			rest = append(rest, f)
		}
	}
	return rest, manifests
}

// Inspect reads f once: its hashes, and the first bytes for sniffing when the
// extension names no type. all is the set of every Rel in the tree (for
// encoding siblings).
func (p Policy) Inspect(f File, all map[string]bool) (Asset, error) {
	a := Asset{File: f, Manifest: p.Manifests.Match(f.Rel)}
	fh, err := os.Open(f.Path)
	if err != nil {
		return a, fmt.Errorf("read %s: %w", f.Rel, err)
	}
	defer fh.Close()

	whole := md5.New()
	var head headWriter
	var w io.Writer = io.MultiWriter(whole, &head)
	var part hash.Hash
	var partLeft int64
	if p.PartSize > 0 && f.Size > p.PartSize {
		part = md5.New()
		partLeft = p.PartSize
	}
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, rerr := fh.Read(buf)
		chunk := buf[:k]
		n += int64(k)
		w.Write(chunk)
		for part != nil && len(chunk) > 0 {
			take := int64(len(chunk))
			if take > partLeft {
				take = partLeft
			}
			part.Write(chunk[:take])
			chunk = chunk[take:]
			partLeft -= take
			if partLeft == 0 {
				a.PartMD5s = append(a.PartMD5s, [md5.Size]byte(part.Sum(nil)))
				part.Reset()
				partLeft = p.PartSize
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return a, fmt.Errorf("read %s: %w", f.Rel, rerr)
		}
	}
	if n != f.Size {
		return a, fmt.Errorf("read %s: size changed while publishing (%d bytes, then %d)", f.Rel, f.Size, n)
	}
	if part != nil && partLeft != p.PartSize {
		a.PartMD5s = append(a.PartMD5s, [md5.Size]byte(part.Sum(nil)))
	}
	a.MD5 = [md5.Size]byte(whole.Sum(nil))

	typeName := f.Rel
	if p.EncodingSiblings {
		if enc, base := siblingEncoding(f.Rel); enc != "" && all[base] {
			a.ContentEncoding = enc
			typeName = base
		}
	}
	a.ContentType = ContentType(typeName, head.b)
	if a.ContentEncoding != "" && ContentTypeByName(typeName) == "" {
		// the sniffed bytes are compressed: they say nothing about the content
		a.ContentType = "application/octet-stream"
	}
	a.CacheControl = p.CacheControlUnfingerprinted
	if !a.Manifest && Fingerprinted(f.Rel) {
		a.CacheControl = p.CacheControl
	}
	return a, nil
}

func siblingEncoding(rel string) (encoding, base string) {
	switch {
	case strings.HasSuffix(rel, ".gz"):
		return "gzip", strings.TrimSuffix(rel, ".gz")
	case strings.HasSuffix(rel, ".br"):
		return "br", strings.TrimSuffix(rel, ".br")
	}
	return "", ""
}

// headWriter keeps the first 512 bytes written: what http.DetectContentType reads.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := 512 - len(h.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		h.b = append(h.b, p[:room]...)
	}
	return len(p), nil
}

// webTypes are the types of the files an asset build produces. They come
// before the system's mime table, which differs between machines.
var webTypes = map[string]string{
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".map":         "application/json",
	".json":        "application/json",
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".txt":         "text/plain; charset=utf-8",
	".xml":         "application/xml",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/vnd.microsoft.icon",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ttf":         "font/ttf",
	".otf":         "font/otf",
	".eot":         "application/vnd.ms-fontobject",
	".wasm":        "application/wasm",
	".pdf":         "application/pdf",
	".csv":         "text/csv; charset=utf-8",
	".gz":          "application/gzip",
	".webmanifest": "application/manifest+json",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
}

// ContentTypeByName returns the type the file name's extension says, or "".
func ContentTypeByName(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" {
		return ""
	}
	if t, ok := webTypes[ext]; ok {
		return t
	}
	return mime.TypeByExtension(ext)
}

// ContentType is the type by extension, falling back to sniffing head (the
// first bytes of the file).
func ContentType(name string, head []byte) string {
	if t := ContentTypeByName(name); t != "" {
		return t
	}
	return http.DetectContentType(head)
}
