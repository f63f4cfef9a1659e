// Package s3server runs a real S3-compatible server (versitygw, posix
// backend) on a loopback port for tests. The binary is built by
// hack/tools.sh into .cache/tools/bin; SLIPWAY_VERSITYGW overrides the path.
package s3server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The root credentials the server is started with.
const (
	AccessKey = "slipwaytest"
	SecretKey = "slipwaytestsecret"
	Region    = "us-east-1"
)

// Server is a running versitygw.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Root string // posix backend folder: one sub-folder per bucket
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan error
}

// Binary finds the versitygw binary.
func Binary() (string, error) {
	if p := os.Getenv("SLIPWAY_VERSITYGW"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "tools", "bin", "versitygw")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("versitygw not built: run hack/tools.sh (make test does): %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("versitygw: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Start runs versitygw on a free loopback port with its posix backend in
// root (created if missing) and waits until it answers.
func Start(root string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(bin, root)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(bin, root string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{URL: "http://" + addr, Root: root, log: &lockedBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "--port", addr, "--access", AccessKey, "--secret", SecretKey,
		"--region", Region, "--quiet", "posix", root)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("versitygw exited: %v: %s", err, s.log.String())
		default:
		}
		resp, err := http.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("versitygw did not answer on %s within 15s: %s", addr, s.log.String())
}

// Stop ends the server and waits for it.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// Client returns an S3 client for the server with its root credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

// CreateBucket makes a bucket.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// Env is the environment a step needs to reach the server through the
// standard AWS credential chain, and nothing from the machine's own config.
func Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":           AccessKey,
		"AWS_SECRET_ACCESS_KEY":       SecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             "/nonexistent/slipway-aws-config",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/slipway-aws-credentials",
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

// RunTests is a TestMain body: it starts a server in a temporary folder,
// exports Env, stores the server in *srv, runs the tests, then stops the
// server and removes the folder. Use: os.Exit(s3server.RunTests(m, &gw)).
func RunTests(m interface{ Run() int }, srv **Server) int {
	root, err := os.MkdirTemp("", "slipway-versitygw-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	s, err := Start(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start versitygw:", err)
		return 1
	}
	defer s.Stop()
	for k, v := range Env() {
		os.Setenv(k, v)
	}
	*srv = s
	return m.Run()
}
