// Package assetstore is where a published asset tree goes: one interface,
// Store, with two implementations: S3 (any S3-compatible service) and a local
// folder (file:///DIR) for local runs and tests.
package assetstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slipway-deploy/slipway/internal/assets"
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

// Store is a destination for an asset tree. Keys are asset Rel paths: each
// store puts them below its own prefix or folder.
type Store interface {
	// List returns every object below the destination, by relative key.
	List(ctx context.Context) (map[string]Object, error)
	// Same reports whether obj already holds a's content.
	Same(ctx context.Context, obj Object, a assets.Asset) (bool, error)
	// Put writes a; a reader never sees a half-written object.
	Put(ctx context.Context, a assets.Asset) error
	// PartSize is the size above which Put uploads in parts (0: never).
	PartSize() int64
	// String names the destination for logs: s3://bucket/prefix, file:///dir.
	String() string
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
