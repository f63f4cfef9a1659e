package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/stepcli"
	"github.com/slipway-deploy/slipway/internal/testsupport/proctest"
	"github.com/slipway-deploy/slipway/internal/testsupport/s3server"
)

// Some tests run the step as a process of its own (to send it SIGTERM, or
// to give it a mount namespace): the test binary, re-run with childEnv set,
// is precompile-assets.
const (
	childEnv = "SLIPWAY_TEST_PRECOMPILE_ASSETS_CHILD"
	// bindEnv is "SRC -> DST": the child bind-mounts SRC onto DST first
	// (in a mount namespace of its own, so nothing outlives it).
	bindEnv = "SLIPWAY_TEST_BIND"
	bindSep = " -> "
)

func childMain() int {
	if b := os.Getenv(bindEnv); b != "" {
		src, dst, _ := strings.Cut(b, bindSep)
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
			fmt.Fprintf(os.Stderr, "bind %s onto %s: %v\n", src, dst, err)
			return 99
		}
	}
	return stepcli.Main(step(), append([]string{"precompile-assets"}, os.Args[1:]...), os.Stdout, os.Stderr)
}

// startChild starts precompile-assets with args; attr, if set, is the
// process's SysProcAttr and bind its bindEnv.
func startChild(t *testing.T, attr *syscall.SysProcAttr, bind string, args ...string) (*proctest.Proc, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--log-format", "text"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1", bindEnv+"="+bind)
	cmd.SysProcAttr = attr
	return proctest.Start(t, cmd)
}

// A file in the tree that cannot be read refuses the whole run (exit 2)
// before anything is written. Root reads a mode-000 file, so as root the
// entry is a bind mount of /proc/sys/vm/drop_caches, a write-only sysctl
// that the kernel refuses to open for reading even to root, in a mount
// namespace of the step's own.
func TestUnreadableFileRefused(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "a.css"), []byte("a{}"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(src, "locked"), 0o755))
	locked := filepath.Join(src, "locked", "b.css")
	require.NoError(t, os.WriteFile(locked, []byte("b{}"), 0o000))
	var attr *syscall.SysProcAttr
	bind := ""
	if os.Geteuid() == 0 {
		attr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		bind = "/proc/sys/vm/drop_caches" + bindSep + locked
	}
	dst := filepath.Join(t.TempDir(), "dst")
	c, err := startChild(t, attr, bind, "--app", "frontend", "--source-dir", src, "--destination", "file://"+dst)
	if errors.Is(err, syscall.EPERM) {
		t.Skip("root without CAP_SYS_ADMIN: no mount namespace for an entry root cannot read")
	}
	require.NoError(t, err)
	code, out := c.Wait(t, 60*time.Second)
	assert.Equal(t, 2, code, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	assert.Contains(t, last, "precompile-assets: 1 of 2 files could not be read, nothing uploaded: read locked/b.css")
	assert.Contains(t, last, "permission denied")
	assert.NoDirExists(t, dst, "nothing written to the destination")
}

// SIGTERM stops the asset build as a process group: nothing it started
// goes on running, and the step does not wait for it.
func TestSIGTERMStopsTheWholeBuild(t *testing.T) {
	for _, tc := range []struct {
		name string
		// the build starts a child, writes its pid to $1, and waits
		build string
	}{
		{"a child that keeps the output open", `sleep 1000 & echo $! > "$PIDFILE"; wait`},
		{"a child with its output elsewhere", `sleep 1000 >/dev/null 2>&1 & echo $! > "$PIDFILE"; wait`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "pid")
			t.Setenv("PIDFILE", pidFile)
			c, err := startChild(t, nil, "", "--app", "frontend", "--source-dir", dir, "--destination", "file://"+filepath.Join(dir, "dst"),
				"--command", tc.build)
			require.NoError(t, err)
			var pid int
			require.Eventually(t, func() bool {
				b, err := os.ReadFile(pidFile)
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				return err == nil && pid > 0
			}, 20*time.Second, 10*time.Millisecond, "the build did not start")
			require.NoError(t, c.Cmd.Process.Signal(syscall.SIGTERM))
			code, out := c.Wait(t, 60*time.Second)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, "was killed by terminated")
			// the build's child is gone (or a zombie waiting for init)
			require.Eventually(t, func() bool {
				st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				return err != nil || strings.Contains(string(st), ") Z ")
			}, 10*time.Second, 20*time.Millisecond, "the build's child outlived the step")
		})
	}
}

// The AWS secret key and session token never appear in what the step
// prints: not in its logs (--debug), not in the build's output, even when
// the build prints a secret in two writes that reach the step in two pipe
// reads (here after 32,762 bytes, as seen), not in the error when S3
// refuses the token.
func TestAWSSecretsNeverPrinted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		token   string
		code    int
		message string
	}{
		{"upload", "", 0, ""},
		// the test server takes no session token: the error path
		{"session token refused", "FwoGZXIvYXdzEJr-session-token-4711", 2, "credentials or region refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_SESSION_TOKEN", tc.token)
			src := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(src, "a.css"), []byte("a{}"), 0o644))
			// each secret whole, then split in two writes with a
			// pause between, on stdout and on stderr
			build := `for s in "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"; do
  [ -n "$s" ] || continue
  echo "key $s"
  half=$(( ${#s} / 2 ))
  head -c 32762 /dev/zero | tr '\0' x
  printf '%s' "$(echo "$s" | cut -c1-$half)"; sleep 0.2; printf '%s\n' "$(echo "$s" | cut -c$((half+1))-)"
  { printf 'err %s' "$(echo "$s" | cut -c1-$half)"; sleep 0.2; printf '%s\n' "$(echo "$s" | cut -c$((half+1))-)"; } >&2
done`
			r := runStep(t, append(s3Args(gw.URL, newBucket(t), "frontend", src, "--command", build), "--debug")...)
			require.Equal(t, tc.code, r.code, r.stderr)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			assert.Contains(t, lines[len(lines)-1], tc.message)
			secrets := map[string]string{"secret key": s3server.SecretKey}
			if tc.token != "" {
				secrets["session token"] = tc.token
			}
			all := r.stdout + r.stderr
			for name, s := range secrets {
				// (not assert.NotContains: it would print 64 KiB of output)
				assert.False(t, strings.Contains(all, s), "the %s was printed", name)
				assert.False(t, strings.Contains(all, s[:len(s)/2]), "half of the %s was printed", name)
				assert.False(t, strings.Contains(all, s[len(s)/2:]), "half of the %s was printed", name)
			}
			// and each line that had one reached the output, masked
			// (the build's stdout and stderr both go to the step's stdout)
			assert.Equal(t, 3*len(secrets), strings.Count(r.stdout, "***\n"))
			assert.Equal(t, len(secrets), strings.Count(r.stdout, "key ***\n"))
			assert.Equal(t, len(secrets), strings.Count(r.stdout, "err ***\n"))
		})
	}
}
