package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/stepcli"
	"github.com/slipway-deploy/slipway/internal/testsupport/s3server"
)

var gw *s3server.Server

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(s3server.RunTests(m, &gw))
}

var bucketSeq atomic.Int64

// newBucket creates a fresh bucket on the server.
func newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("assets-%d-%d", time.Now().UnixNano()%1e6, bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, gw.CreateBucket(ctx, name))
	return name
}

type result struct {
	code           int
	stdout, stderr string
	outputs        map[string]string
}

// runStep runs precompile-assets in-process with an outputs dir.
func runStep(t *testing.T, args ...string) result {
	t.Helper()
	outDir := t.TempDir()
	var stdout, stderr bytes.Buffer
	full := append([]string{"precompile-assets", "--log-format", "json", "--outputs-dir", outDir}, args...)
	code := stepcli.Main(step(), full, &stdout, &stderr)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String(), outputs: map[string]string{}}
	for _, name := range []string{"uploaded", "skipped", "bytes", "outcome"} {
		if b, err := os.ReadFile(filepath.Join(outDir, name)); err == nil {
			r.outputs[name] = string(b)
		}
	}
	return r
}

func s3Args(endpoint, bucket, prefix, src string, extra ...string) []string {
	return append([]string{"--app", "frontend", "--source-dir", src,
		"--destination", "s3://" + bucket + "/" + prefix, "--endpoint-url", endpoint, "--path-style",
		"--concurrency", "16"}, extra...)
}

// want is what one object must look like at the destination.
type want struct {
	body            []byte
	contentType     string
	cacheControl    string
	contentEncoding string
}

const (
	longCache  = "public, max-age=31536000, immutable"
	shortCache = "public, max-age=300"
)

// makeTree writes n files (plus manifests) of 1 byte to 8 KiB into dir, with
// nested folders, non-ASCII and spaced names, fingerprinted and plain names,
// and returns what each must become. The expected types and cache headers are
// written here by hand, not computed by the code under test.
func makeTree(t *testing.T, dir string, n int, seed uint64) map[string]want {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	kinds := []struct{ ext, ctype string }{
		{".css", "text/css; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".woff2", "font/woff2"},
		{".map", "application/json"},
		{"", "text/plain; charset=utf-8"}, // no extension: sniffed (the bodies are text)
	}
	dirs := []string{"", "stylesheets", "javascripts/vendor", "images/icons", "fonts", "ünïcødé/файлы", "with space"}
	tree := map[string]want{}
	for i := 0; i < n; i++ {
		k := kinds[i%len(kinds)]
		d := dirs[rng.IntN(len(dirs))]
		name := fmt.Sprintf("file%d", i)
		cache := shortCache
		if i%2 == 0 {
			name += fmt.Sprintf("-%016x%016x", rng.Uint64()|1<<60, rng.Uint64()) // a digest
			cache = longCache
		}
		rel := strings.TrimPrefix(d+"/"+name+k.ext, "/")
		body := make([]byte, 1+rng.IntN(8<<10))
		for j := range body {
			body[j] = "abcdefghijklmnopqrstuvwxyz0123456789 \n"[rng.IntN(38)]
		}
		tree[rel] = want{body: body, contentType: k.ctype, cacheControl: cache}
	}
	tree[".sprockets-manifest-0f1e2d3c4b5a69788796a5b4c3d2e1f0.json"] = want{body: []byte(`{"files":{}}`), contentType: "application/json", cacheControl: shortCache}
	tree["empty.txt"] = want{body: []byte{}, contentType: "text/plain; charset=utf-8", cacheControl: shortCache}
	tree["manifest.json"] = want{body: []byte(`{"application.js":"application-1.js"}`), contentType: "application/json", cacheControl: shortCache}
	tree["javascripts/manifest-legacy.json"] = want{body: []byte(`{}`), contentType: "application/json", cacheControl: shortCache}
	writeTree(t, dir, tree)
	return tree
}

func writeTree(t *testing.T, dir string, tree map[string]want) {
	t.Helper()
	for rel, w := range tree {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, w.body, 0o644))
	}
}

func isManifest(rel string) bool {
	base := filepath.Base(rel)
	return strings.HasPrefix(base, "manifest") || strings.HasPrefix(base, ".sprockets-manifest-")
}

// assertBucketEquals lists and fetches every object below prefix and checks
// keys, bytes, content types and cache headers against tree plus extra
// (objects that were there before and must survive).
func assertBucketEquals(t *testing.T, bucket, prefix string, tree map[string]want, extra map[string][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := gw.Client()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/"), MaxKeys: aws.Int32(37)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), prefix+"/"))
		}
	}
	var wantKeys []string
	for k := range tree {
		wantKeys = append(wantKeys, k)
	}
	for k := range extra {
		wantKeys = append(wantKeys, k)
	}
	sort.Strings(wantKeys)
	sort.Strings(keys)
	require.Equal(t, wantKeys, keys, "keys in the bucket")
	for _, k := range keys {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "/" + k)})
		require.NoError(t, err, k)
		body, err := io.ReadAll(out.Body)
		out.Body.Close()
		require.NoError(t, err)
		if old, ok := extra[k]; ok {
			assert.Equal(t, old, body, "old object %s", k)
			continue
		}
		w := tree[k]
		assert.True(t, bytes.Equal(w.body, body), "bytes of %s", k)
		assert.Equal(t, w.contentType, aws.ToString(out.ContentType), "Content-Type of %s", k)
		assert.Equal(t, w.cacheControl, aws.ToString(out.CacheControl), "Cache-Control of %s", k)
		assert.Equal(t, w.contentEncoding, aws.ToString(out.ContentEncoding), "Content-Encoding of %s", k)
	}
}

func TestS3UploadEqualsTreeAndReRunsUploadOnlyChanges(t *testing.T) {
	bucket := newBucket(t)
	src := t.TempDir()
	tree := makeTree(t, src, 150, 1)
	proxy := newFaultProxy(t, gw.URL, 0, 1) // no faults: counts requests

	r := runStep(t, s3Args(proxy.URL, bucket, "assets/frontend", src)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, strconv.Itoa(len(tree)), r.outputs["uploaded"])
	assert.Equal(t, "0", r.outputs["skipped"])
	var total int
	for _, w := range tree {
		total += len(w.body)
	}
	assert.Equal(t, strconv.Itoa(total), r.outputs["bytes"])
	assertBucketEquals(t, bucket, "assets/frontend", tree, nil)

	before := proxy.puts()
	r = runStep(t, s3Args(proxy.URL, bucket, "assets/frontend", src)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "0", r.outputs["uploaded"], "second run")
	assert.Equal(t, strconv.Itoa(len(tree)), r.outputs["skipped"])
	assert.Equal(t, before, proxy.puts(), "a no-change run sends no PUT")

	changeOneFile(t, src, tree)
	before = proxy.puts()
	r = runStep(t, s3Args(proxy.URL, bucket, "assets/frontend", src)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "1", r.outputs["uploaded"], "one file changed")
	assert.Equal(t, 1, proxy.puts()-before)
	assertBucketEquals(t, bucket, "assets/frontend", tree, nil)
}

// changeOneFile flips one byte of one asset (not a manifest) in src and tree:
// same size, other bytes, so only the content hash can tell.
func changeOneFile(t *testing.T, src string, tree map[string]want) {
	t.Helper()
	for k, w := range tree {
		if isManifest(k) || len(w.body) < 2 {
			continue
		}
		w.body = bytes.Clone(w.body)
		w.body[1] ^= 0x01
		tree[k] = w
		writeTree(t, src, map[string]want{k: w})
		return
	}
	t.Fatal("no file to change")
}

func TestS3FaultInjectionStillCompletes(t *testing.T) {
	bucket := newBucket(t)
	src := t.TempDir()
	tree := makeTree(t, src, 120, 2)
	proxy := newFaultProxy(t, gw.URL, 0.2, 2)

	r := runStep(t, s3Args(proxy.URL, bucket, "assets/frontend", src, "--max-attempts", "12")...)
	require.Equal(t, 0, r.code, r.stderr)
	_, faults := proxy.snapshot()
	for _, kind := range []string{"500", "503", "reset", "slow"} {
		assert.Positive(t, faults[kind], "fault %s injected", kind)
	}
	t.Logf("faults injected: %v", faults)
	assertBucketEquals(t, bucket, "assets/frontend", tree, nil)
	checkManifestsLast(t, proxy, bucket)
}

// checkManifestsLast proves from the proxy's log that no manifest request
// started before every other object's upload had been answered with 200.
func checkManifestsLast(t *testing.T, proxy *faultProxy, bucket string) {
	t.Helper()
	events, _ := proxy.snapshot()
	lastAsset, firstManifest, manifests := -1, len(events), 0
	for i, e := range events {
		if e.method != http.MethodPut {
			continue
		}
		key := objectKey(e.path, bucket)
		switch {
		case isManifest(key) && e.start:
			manifests++
			if i < firstManifest {
				firstManifest = i
			}
		case !isManifest(key) && !e.start && e.status == http.StatusOK:
			lastAsset = i
		}
	}
	require.Positive(t, manifests, "manifests were uploaded")
	require.GreaterOrEqual(t, lastAsset, 0, "assets were uploaded")
	assert.Less(t, lastAsset, firstManifest, "the last asset upload ended (event %d) before the first manifest request (event %d)", lastAsset, firstManifest)
}

func TestS3ManifestsAreWrittenLast(t *testing.T) {
	bucket := newBucket(t)
	src := t.TempDir()
	makeTree(t, src, 80, 3)
	proxy := newFaultProxy(t, gw.URL, 0, 3)
	r := runStep(t, s3Args(proxy.URL, bucket, "assets/frontend", src)...)
	require.Equal(t, 0, r.code, r.stderr)
	checkManifestsLast(t, proxy, bucket)
}

func TestS3FailedUploadsExitOneHoldManifestsAndReRunCompletes(t *testing.T) {
	bucket := newBucket(t)
	src := t.TempDir()
	tree := makeTree(t, src, 40, 4)
	broken := 0
	proxy := newFaultProxy(t, gw.URL, 0, 4)
	proxy.failAlways = func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "file3")
	}
	for k := range tree {
		if strings.Contains(k, "file3") {
			broken++
		}
	}
	require.Positive(t, broken)
	r := runStep(t, s3Args(proxy.URL, bucket, "assets/frontend", src, "--max-attempts", "2")...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, fmt.Sprintf("%d of %d objects did not make it", broken+3, len(tree)))
	assert.Contains(t, r.stderr, "3 manifests held back")
	// a failed run still reports what it uploaded
	assert.Equal(t, "failed", r.outputs["outcome"])
	assert.Equal(t, strconv.Itoa(len(tree)-broken-3), r.outputs["uploaded"])
	events, _ := proxy.snapshot()
	for _, e := range events {
		assert.False(t, e.method == http.MethodPut && isManifest(objectKey(e.path, bucket)), "manifest %s sent after a failure", e.path)
	}

	r = runStep(t, s3Args(gw.URL, bucket, "assets/frontend", src)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, strconv.Itoa(broken+3), r.outputs["uploaded"])
	assertBucketEquals(t, bucket, "assets/frontend", tree, nil)
}

func TestS3NothingIsDeleted(t *testing.T) {
	bucket := newBucket(t)
	ctx := context.Background()
	old := map[string][]byte{
		"application-0123456789abcdef0123456789abcdef.js": []byte("old release"),
		"images/old-logo-abcdef0123456789.png":            []byte("old logo"),
	}
	for k, v := range old {
		_, err := gw.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("assets/frontend/" + k), Body: bytes.NewReader(v)})
		require.NoError(t, err)
	}
	src := t.TempDir()
	tree := makeTree(t, src, 30, 5)
	r := runStep(t, s3Args(gw.URL, bucket, "assets/frontend", src)...)
	require.Equal(t, 0, r.code, r.stderr)
	assertBucketEquals(t, bucket, "assets/frontend", tree, old)
}

func TestS3EncodingSiblings(t *testing.T) {
	bucket := newBucket(t)
	src := t.TempDir()
	tree := map[string]want{
		"app-0123abcd4567ef89.js":    {body: []byte("alert(1)"), contentType: "text/javascript; charset=utf-8", cacheControl: longCache},
		"app-0123abcd4567ef89.js.gz": {body: []byte("\x1f\x8b gz bytes"), contentType: "text/javascript; charset=utf-8", cacheControl: longCache, contentEncoding: "gzip"},
		"app-0123abcd4567ef89.js.br": {body: []byte("br bytes"), contentType: "text/javascript; charset=utf-8", cacheControl: longCache, contentEncoding: "br"},
		"lonely.css.gz":              {body: []byte("\x1f\x8b gz"), contentType: "application/gzip", cacheControl: shortCache},
	}
	writeTree(t, src, tree)
	r := runStep(t, s3Args(gw.URL, bucket, "p", src, "--encoding-siblings")...)
	require.Equal(t, 0, r.code, r.stderr)
	assertBucketEquals(t, bucket, "p", tree, nil)
}

func TestS3DryRunWritesNothing(t *testing.T) {
	bucket := newBucket(t)
	src := t.TempDir()
	tree := makeTree(t, src, 20, 6)
	proxy := newFaultProxy(t, gw.URL, 0, 6)
	r := runStep(t, s3Args(proxy.URL, bucket, "assets/frontend", src, "--dry-run")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 0, proxy.puts())
	assert.Equal(t, len(tree), strings.Count(r.stdout, "would upload "))
	assert.Contains(t, r.stdout, "would upload manifest.json (")
	assert.Equal(t, "dry-run", r.outputs["outcome"])
	assert.Equal(t, strconv.Itoa(len(tree)), r.outputs["uploaded"], "what would be uploaded")
	assert.Contains(t, r.stderr, fmt.Sprintf(`"would_upload":%d`, len(tree)))
	assertBucketEquals(t, bucket, "assets/frontend", map[string]want{}, nil)
}

// localEquals checks that dir holds exactly tree plus extra.
func localEquals(t *testing.T, dir string, tree map[string]want, extra map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = b
		return err
	}))
	wantAll := map[string][]byte{}
	for k, w := range tree {
		wantAll[k] = w.body
	}
	for k, v := range extra {
		wantAll[k] = v
	}
	assert.Equal(t, wantAll, got)
}

func TestFileDestinationEqualsTreeIsIdempotentAndDeletesNothing(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "published")
	old := map[string][]byte{"application-0123456789abcdef.js": []byte("old release")}
	require.NoError(t, os.MkdirAll(dst, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dst, "application-0123456789abcdef.js"), old["application-0123456789abcdef.js"], 0o644))
	tree := makeTree(t, src, 100, 7)
	args := []string{"--app", "frontend", "--source-dir", src, "--destination", "file://" + dst}

	r := runStep(t, args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, strconv.Itoa(len(tree)), r.outputs["uploaded"])
	assert.Equal(t, "published", r.outputs["outcome"])
	localEquals(t, dst, tree, old)

	r = runStep(t, args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "0", r.outputs["uploaded"])
	assert.Equal(t, strconv.Itoa(len(tree)), r.outputs["skipped"])
	assert.Equal(t, "already-there", r.outputs["outcome"])
	assert.Contains(t, r.stderr, `"msg":"published"`)

	changeOneFile(t, src, tree)
	r = runStep(t, args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "1", r.outputs["uploaded"])
	localEquals(t, dst, tree, old)
}

func TestCommandRunsFirstAndItsFailureFails(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	dst := filepath.Join(t.TempDir(), "out")
	r := runStep(t, "--app", "frontend", "--destination", "file://"+dst,
		"--command", "mkdir -p public/assets/frontend && echo built > public/assets/frontend/app.txt && echo compiling assets")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "compiling assets")
	b, err := os.ReadFile(filepath.Join(dst, "app.txt"))
	require.NoError(t, err)
	assert.Equal(t, "built\n", string(b))

	r = runStep(t, "--app", "frontend", "--destination", "file://"+dst, "--command", "echo broken build; exit 7")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "broken build")
	assert.Contains(t, r.stderr, "exited with status 7")
}

func TestHelpNamesEveryFlagAndItsEnvTwin(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := stepcli.Main(step(), []string{"precompile-assets", "--help"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	for _, flag := range []string{"app", "source-dir", "command", "destination", "endpoint-url", "region", "path-style",
		"concurrency", "max-attempts", "cache-control", "cache-control-unfingerprinted", "manifest-pattern",
		"encoding-siblings", "dry-run", "outputs-dir"} {
		assert.Contains(t, stdout.String(), "--"+flag+" ", flag)
		assert.Contains(t, stdout.String(), stepcli.Env(flag)[0], flag)
	}
	assert.Contains(t, stdout.String(), "--concurrency value")
	assert.Contains(t, stdout.String(), "(default: 32)")
}

func TestBadInput(t *testing.T) {
	good := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(good, "a.css"), []byte("a{}"), 0o644))
	outside := filepath.Join(t.TempDir(), "secret.txt")
	require.NoError(t, os.WriteFile(outside, []byte("secret"), 0o644))
	escaping := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(escaping, "a.css"), []byte("a{}"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(escaping, "leak.txt")))
	dangling := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dangling, "a.css"), []byte("a{}"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(dangling, "gone.css"), filepath.Join(dangling, "b.css")))
	fifo := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(fifo, "a.css"), []byte("a{}"), 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(fifo, "pipe.css"), 0o644))
	bucket := newBucket(t)
	closed := "http://127.0.0.1:1" // nothing listens on port 1

	cases := []struct {
		name    string
		args    []string
		code    int
		message string
		env     map[string]string
	}{
		{"missing source dir", []string{"--source-dir", filepath.Join(good, "nope"), "--destination", "file:///tmp/x"}, 2, "does not exist", nil},
		{"empty source dir", []string{"--source-dir", t.TempDir(), "--destination", "file:///tmp/x"}, 2, "has no files", nil},
		{"source is a file", []string{"--source-dir", filepath.Join(good, "a.css"), "--destination", "file:///tmp/x"}, 2, "not a directory", nil},
		{"symlink leads outside", []string{"--source-dir", escaping, "--destination", "file:///tmp/x"}, 2, "leads outside the source dir", nil},
		{"dangling symlink", []string{"--source-dir", dangling, "--destination", "file:///tmp/x"}, 2, "symlink b.css", nil},
		{"not a regular file", []string{"--source-dir", fifo, "--destination", "file:///tmp/x"}, 2, "pipe.css is not a regular file", nil},
		{"unparseable destination", []string{"--source-dir", good, "--destination", "s3:/bucket"}, 2, "want s3://BUCKET/PREFIX or file:///DIR", nil},
		{"unknown scheme", []string{"--source-dir", good, "--destination", "gs://bucket/x"}, 2, "want s3://BUCKET/PREFIX or file:///DIR", nil},
		{"bad bucket name", []string{"--source-dir", good, "--destination", "s3://Bad_Bucket/x"}, 2, "not a valid bucket name", nil},
		{"relative file destination", []string{"--source-dir", good, "--destination", "file://relative/dir"}, 2, "absolute folder", nil},
		{"bucket does not exist", []string{"--source-dir", good, "--destination", "s3://no-such-bucket-here/x", "--endpoint-url", gw.URL, "--path-style"}, 2, "bucket does not exist", nil},
		{"wrong secret key", []string{"--source-dir", good, "--destination", "s3://" + bucket + "/x", "--endpoint-url", gw.URL, "--path-style"}, 2, "credentials or region refused", map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}},
		{"wrong region", []string{"--source-dir", good, "--destination", "s3://" + bucket + "/x", "--endpoint-url", gw.URL, "--path-style", "--region", "eu-west-2"}, 2, "credentials or region refused", nil},
		{"server unreachable", []string{"--source-dir", good, "--destination", "s3://" + bucket + "/x", "--endpoint-url", closed, "--path-style", "--max-attempts", "2"}, 1, "connection refused", nil},
		{"bad manifest pattern", []string{"--source-dir", good, "--destination", "file:///tmp/x", "--manifest-pattern", "manifest[.json"}, 2, "manifest pattern", nil},
		{"bad concurrency", []string{"--source-dir", good, "--destination", "file:///tmp/x", "--concurrency", "0"}, 2, "--concurrency 0", nil},
		{"bad app", []string{"--app", "../etc", "--source-dir", good, "--destination", "file:///tmp/x"}, 2, `app "../etc"`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dst := filepath.Join(t.TempDir(), "dst")
			args := []string{"--app", "frontend"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "file:///tmp/x", "file://"+dst))
			}
			r := runStep(t, args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			assert.Contains(t, last, tc.message)
			assert.True(t, strings.HasPrefix(last, "precompile-assets: "), last)
			_, err := os.Stat(dst)
			assert.True(t, os.IsNotExist(err), "nothing written to the destination")
		})
	}
	// and nothing reached the bucket from the unreachable-server case
	assertBucketEquals(t, bucket, "x", map[string]want{}, nil)
}
