// Package assetstore is where a published tree of files goes. Open picks
// the store from the destination URL, as s5cmd's storage.NewClient does:
// s3://BUCKET/PREFIX is a bucket on any S3-compatible service, file:///DIR
// a folder (local runs and tests). A Store takes keys, metadata and
// readers; it knows nothing of the asset tree its caller reads.
package assetstore

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrNoBucket is returned (wrapped) when the destination bucket does not exist.
var ErrNoBucket = errors.New("bucket does not exist")

// ErrRefused is returned (wrapped) when the service refuses the credentials,
// signature or region: a configuration problem a retry does not fix.
var ErrRefused = errors.New("credentials or region refused")

// Object is what a listing says about one object at the destination.
type Object struct {
	// Key is relative to the destination prefix, "/"-separated.
	Key  string
	Size int64
	// ETag as the store reports it, without quotes (S3 only).
	ETag string
}

// Content is what a store needs to know of an object's bytes to tell
// whether the destination already holds them, and to check an upload.
type Content struct {
	Size int64
	MD5  [md5.Size]byte
	// PartMD5s is the MD5 of each PartSize() slice of a content larger
	// than the store's PartSize, from which S3's multipart ETag follows.
	PartMD5s [][md5.Size]byte
}

// Metadata is what an object is served with. A folder keeps none of it.
type Metadata struct {
	ContentType     string
	CacheControl    string
	ContentEncoding string
}

// Body is an object's bytes: read whole, rewound for a retry, and read at
// offsets for an upload in parts. An *os.File is one.
type Body interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// Store is a destination. Keys are relative, "/"-separated paths: each
// store puts them below its own prefix or folder.
type Store interface {
	// List returns every object below the destination, by relative key.
	List(ctx context.Context) (map[string]Object, error)
	// Same reports whether obj already holds c.
	Same(ctx context.Context, obj Object, c Content) (bool, error)
	// Put writes body, whose bytes c describes, at key with meta; a
	// reader never sees a half-written object.
	Put(ctx context.Context, key string, body Body, c Content, meta Metadata) error
	// PartSize is the size above which Put uploads in parts (0: never).
	PartSize() int64
	// String names the destination for logs: s3://bucket/prefix/, file:///dir.
	String() string
}

// Options configure the S3 store Open makes; a folder needs none.
type Options struct {
	// Region; empty takes the standard chain's (AWS_REGION, shared config),
	// then us-east-1.
	Region string
	// EndpointURL for S3-compatible services; empty is AWS.
	EndpointURL string
	PathStyle   bool
	// Concurrency sizes the connection pool: the number of requests in flight.
	Concurrency int
	// MaxAttempts per request, first try included (adaptive retry mode).
	MaxAttempts int
}

// Open returns the store destination names: s3://BUCKET/PREFIX or
// file:///DIR. An error is a destination or configuration to fix, not
// one a retry fixes.
func Open(ctx context.Context, destination string, o Options) (Store, error) {
	d, err := ParseDestination(destination)
	if err != nil {
		return nil, err
	}
	if d.Scheme == "s3" {
		return newS3(ctx, d.Bucket, d.Prefix, o)
	}
	return &Local{Dir: d.Dir}, nil
}

// EnvSecrets are the credentials the AWS chain reads from the environment,
// for the redactor: the SDK never prints them, and masking them costs
// nothing.
func EnvSecrets() []string {
	var out []string
	for _, env := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		if v := os.Getenv(env); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Destination is a parsed --destination.
type Destination struct {
	Scheme string // "s3" or "file"
	Bucket string // s3
	Prefix string // s3: no leading or trailing "/", may be empty
	Dir    string // file: absolute, clean
}

// String is the destination as a URL, escaped where needed.
func (d Destination) String() string {
	if d.Scheme == "file" {
		return (&url.URL{Scheme: "file", Path: d.Dir}).String()
	}
	p := "/"
	if d.Prefix != "" {
		p = "/" + d.Prefix + "/"
	}
	return (&url.URL{Scheme: "s3", Host: d.Bucket, Path: p}).String()
}

// bucketName follows S3's naming rules for new buckets (lowercase, 3-63).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseDestination reads s3://BUCKET/PREFIX or file:///DIR.
func ParseDestination(s string) (Destination, error) {
	const want = "want s3://BUCKET/PREFIX or file:///DIR"
	u, err := url.Parse(s)
	if err != nil {
		return Destination{}, fmt.Errorf("destination %q: %s", s, want)
	}
	if u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return Destination{}, fmt.Errorf("destination %q: %s (no query, fragment or user)", s, want)
	}
	if strings.IndexFunc(u.Path, unicode.IsControl) >= 0 || !utf8.ValidString(u.Path) {
		return Destination{}, fmt.Errorf("destination %q: control characters or invalid UTF-8 in the path", s)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return Destination{}, fmt.Errorf("destination %q: %s", s, want)
		}
		if !bucketName.MatchString(u.Host) || strings.Contains(u.Host, "..") {
			return Destination{}, fmt.Errorf("destination %q: %q is not a valid bucket name", s, u.Host)
		}
		prefix := strings.Trim(u.Path, "/")
		if prefix != "" {
			for _, seg := range strings.Split(prefix, "/") {
				if seg == "" || seg == "." || seg == ".." {
					return Destination{}, fmt.Errorf("destination %q: prefix has an empty, \".\" or \"..\" segment", s)
				}
			}
		}
		return Destination{Scheme: "s3", Bucket: u.Host, Prefix: prefix}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Destination{}, fmt.Errorf("destination %q: file URLs name an absolute folder: file:///DIR", s)
		}
		if !strings.HasPrefix(u.Path, "/") || path.Clean(u.Path) == "/" {
			return Destination{}, fmt.Errorf("destination %q: file URLs name an absolute folder other than /: file:///DIR", s)
		}
		return Destination{Scheme: "file", Dir: path.Clean(u.Path)}, nil
	}
	return Destination{}, fmt.Errorf("destination %q: %s", s, want)
}
