package assetstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/testsupport/s3server"
)

var gw *s3server.Server

func TestMain(m *testing.M) { os.Exit(s3server.RunTests(m, &gw)) }

func TestParseDestination(t *testing.T) {
	cases := []struct {
		in      string
		want    Destination
		wantErr string
	}{
		{"s3://govuk-app-assets-integration/assets/frontend/", Destination{Scheme: "s3", Bucket: "govuk-app-assets-integration", Prefix: "assets/frontend"}, ""},
		{"s3://bucket.with.dots/x", Destination{Scheme: "s3", Bucket: "bucket.with.dots", Prefix: "x"}, ""},
		{"s3://bucket", Destination{Scheme: "s3", Bucket: "bucket"}, ""},
		{"s3://bucket/", Destination{Scheme: "s3", Bucket: "bucket"}, ""},
		{"file:///srv/assets/", Destination{Scheme: "file", Dir: "/srv/assets"}, ""},
		{"file://localhost/srv/a/../b", Destination{Scheme: "file", Dir: "/srv/b"}, ""},
		{"s3:/bucket", Destination{}, "want s3://BUCKET/PREFIX or file:///DIR"},
		{"bucket/prefix", Destination{}, "want s3://BUCKET/PREFIX or file:///DIR"},
		{"https://bucket.s3.amazonaws.com/x", Destination{}, "want s3://BUCKET/PREFIX or file:///DIR"},
		{"s3://Bucket/x", Destination{}, "not a valid bucket name"},
		{"s3://ab/x", Destination{}, "not a valid bucket name"},
		{"s3://a..b/x", Destination{}, "not a valid bucket name"},
		{"s3://bucket/a//b", Destination{}, "empty"},
		{"s3://bucket/a/../b", Destination{}, `".."`},
		{"s3://bucket/x?versionId=1", Destination{}, "no query"},
		{"s3://bucket/x#frag", Destination{}, "no query"},
		{"s3://user@bucket/x", Destination{}, "no query"},
		{"file://relative/dir", Destination{}, "absolute folder"},
		{"file:///", Destination{}, "other than /"},
		{"file:relative", Destination{}, "no query"},
		{"", Destination{}, "want s3://BUCKET/PREFIX or file:///DIR"},
		{"s3://bucket/%zz", Destination{}, "want s3://BUCKET/PREFIX or file:///DIR"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDestination(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzParseDestination: --destination is outside input. Parsing never
// panics, and whatever it accepts prints back to a URL that parses to the
// same destination, with no ".." or empty segment that could move a key.
func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"s3://bucket/prefix", "s3://b.content-d/a/b/", "file:///tmp/x", "file://localhost/a", "s3://bucket/%2e%2e/x",
		"s3://bucket/a b/ü", "file:///a/../../b", "s3://x", "s3:///x", "file://", "s3://bucket/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDestination(s)
		if err != nil {
			return
		}
		again, err := ParseDestination(d.String())
		if err != nil {
			t.Fatalf("%q parsed to %+v, whose %q does not parse: %v", s, d, d.String(), err)
		}
		if again != d {
			t.Fatalf("%q: %+v then %+v", s, d, again)
		}
		if d.Scheme == "s3" {
			for _, seg := range bytes.Split([]byte(d.Prefix), []byte("/")) {
				if d.Prefix != "" && (len(seg) == 0 || string(seg) == ".." || string(seg) == ".") {
					t.Fatalf("%q: prefix %q has a bad segment", s, d.Prefix)
				}
			}
		}
		if d.Scheme == "file" && (d.Dir == "" || d.Dir[0] != '/' || filepath.Clean(d.Dir) != d.Dir) {
			t.Fatalf("%q: dir %q not absolute and clean", s, d.Dir)
		}
	})
}

// object is a file to put, with its content hashed here (the MD5 of each
// partSize slice too when it is larger), not by the code under test.
type object struct {
	key, path string
	content   Content
}

func newObject(t *testing.T, dir, key string, body []byte, partSize int64) object {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(key))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, body, 0o644))
	c := Content{Size: int64(len(body)), MD5: md5.Sum(body)}
	for i := int64(0); partSize > 0 && c.Size > partSize && i < c.Size; i += partSize {
		c.PartMD5s = append(c.PartMD5s, md5.Sum(body[i:min(i+partSize, c.Size)]))
	}
	return object{key: key, path: p, content: c}
}

// put writes o to s from its file.
func (o object) put(ctx context.Context, s Store) error {
	f, err := os.Open(o.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.Put(ctx, o.key, f, o.content, Metadata{ContentType: "text/plain", CacheControl: "c"})
}

func s3Store(t *testing.T, prefix string) (Store, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bucket := fmt.Sprintf("store-%d", rand.Uint32())
	require.NoError(t, gw.CreateBucket(ctx, bucket))
	s, err := Open(ctx, "s3://"+bucket+"/"+prefix, Options{EndpointURL: gw.URL, PathStyle: true, Concurrency: 4})
	require.NoError(t, err)
	return s, bucket
}

// Open picks the store from the destination's scheme.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "s3://bucket/assets/frontend", Options{Region: "eu-west-2"})
	require.NoError(t, err)
	require.IsType(t, &S3{}, s)
	assert.Equal(t, "s3://bucket/assets/frontend/", s.String())
	assert.Equal(t, int64(S3PartSize), s.PartSize())

	s, err = Open(ctx, "file:///srv/assets/../published", Options{})
	require.NoError(t, err)
	assert.Equal(t, &Local{Dir: "/srv/published"}, s)
	assert.Equal(t, "file:///srv/published", s.String())

	_, err = Open(ctx, "gs://bucket/x", Options{})
	assert.ErrorContains(t, err, "want s3://BUCKET/PREFIX or file:///DIR")
}

func TestS3MultipartObjectsCompareByETagOrMetadata(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, bucket := s3Store(t, "assets/frontend")
	dir := t.TempDir()
	body := make([]byte, S3PartSize*2+12345) // three parts
	for i := range body {
		body[i] = byte(i * 7)
	}
	big := newObject(t, dir, "video/intro-0a1b2c3d4e5f.mp4", body, S3PartSize)
	small := newObject(t, dir, "a.css", []byte("a{}"), S3PartSize)
	require.Len(t, big.content.PartMD5s, 3)
	require.NoError(t, big.put(ctx, s))
	require.NoError(t, small.put(ctx, s))

	objs, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	assert.Equal(t, ETag(big.content), objs[big.key].ETag, "multipart ETag predicted")
	assert.Equal(t, hex.EncodeToString(small.content.MD5[:]), objs[small.key].ETag)
	for _, o := range []object{big, small} {
		same, err := s.Same(ctx, objs[o.key], o.content)
		require.NoError(t, err)
		assert.True(t, same, o.key)
	}
	out, err := gw.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("assets/frontend/" + big.key)})
	require.NoError(t, err)
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got), "bytes of the multipart object")

	// Someone else uploaded the same bytes in parts of another size: the ETag
	// differs, the md5 metadata decides. Without it the object is re-uploaded.
	other := manager.NewUploader(gw.Client(), func(u *manager.Uploader) { u.PartSize = 5 << 20 })
	for _, withMeta := range []bool{true, false} {
		key := fmt.Sprintf("assets/frontend/other-%v.mp4", withMeta)
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
		if withMeta {
			in.Metadata = map[string]string{"md5": hex.EncodeToString(big.content.MD5[:])}
		}
		_, err := other.Upload(ctx, in)
		require.NoError(t, err)
		objs, err := s.List(ctx)
		require.NoError(t, err)
		obj := objs[fmt.Sprintf("other-%v.mp4", withMeta)]
		assert.NotEqual(t, ETag(big.content), obj.ETag)
		same, err := s.Same(ctx, obj, big.content)
		require.NoError(t, err)
		assert.Equal(t, withMeta, same, "metadata present: %v", withMeta)
	}

	// A changed byte with the same size is not the same.
	changed := bytes.Clone(body)
	changed[len(changed)-1] ^= 1
	c := newObject(t, t.TempDir(), big.key, changed, S3PartSize)
	same, err := s.Same(ctx, objs[big.key], c.content)
	require.NoError(t, err)
	assert.False(t, same)
}

func TestS3ListPaginatesAndStaysBelowPrefix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, bucket := s3Store(t, "p")
	// 1,005 objects: more than one ListObjectsV2 page of 1,000
	for i := 0; i < 1005; i++ {
		_, err := gw.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("p/k%04d", i)), Body: bytes.NewReader(nil)})
		require.NoError(t, err)
	}
	for _, k := range []string{"pp/outside", "other/x"} {
		_, err := gw.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(nil)})
		require.NoError(t, err)
	}
	objs, err := s.List(ctx)
	require.NoError(t, err)
	assert.Len(t, objs, 1005)
	assert.Contains(t, objs, "k1004")
}

func TestS3MissingBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, "s3://no-such-bucket-at-all", Options{EndpointURL: gw.URL, PathStyle: true})
	require.NoError(t, err)
	_, err = s.List(ctx)
	assert.ErrorIs(t, err, ErrNoBucket)
}

func TestLocalPutIsAtomicAndListSkipsLeftovers(t *testing.T) {
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "out")
	l := &Local{Dir: dst}
	objs, err := l.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, objs, "a folder not there yet is empty")

	a := newObject(t, t.TempDir(), "ünï/a b.css", []byte("a{}"), 0)
	require.NoError(t, a.put(ctx, l))
	require.NoError(t, os.WriteFile(filepath.Join(dst, "ünï", tmpPrefix+"123"), []byte("half"), 0o644))
	objs, err = l.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]Object{"ünï/a b.css": {Key: "ünï/a b.css", Size: 3}}, objs)
	same, err := l.Same(ctx, objs[a.key], a.content)
	require.NoError(t, err)
	assert.True(t, same)

	b := newObject(t, t.TempDir(), "ünï/a b.css", []byte("b{}"), 0)
	same, err = l.Same(ctx, objs[a.key], b.content)
	require.NoError(t, err)
	assert.False(t, same, "same size, other bytes")

	// a file that shrank between hashing and copying is refused, nothing left behind
	c := b
	c.content.Size = 10
	assert.ErrorContains(t, c.put(ctx, l), "size changed while publishing")
	got, err := os.ReadFile(filepath.Join(dst, "ünï", "a b.css"))
	require.NoError(t, err)
	assert.Equal(t, "a{}", string(got))
	entries, err := os.ReadDir(filepath.Join(dst, "ünï"))
	require.NoError(t, err)
	assert.Len(t, entries, 2, "the old file and the planted leftover only")
}
