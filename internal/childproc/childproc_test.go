package childproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/testsupport/syncbuffer"
)

// recordingWriter keeps each Write separately.
type recordingWriter struct{ writes []string }

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestLineWriterPassesWholeLines(t *testing.T) {
	rec := &recordingWriter{}
	lw := newLineWriter(rec)
	for _, chunk := range []string{"hel", "lo wor", "ld\nsecond", " line\nthird\nfour", "th"} {
		n, err := lw.Write([]byte(chunk))
		require.NoError(t, err)
		assert.Equal(t, len(chunk), n)
	}
	lw.flush()
	assert.Equal(t, []string{"hello world\n", "second line\n", "third\n", "fourth\n"}, rec.writes)
}

// gone waits (at most 10s) for pid to have exited: no /proc entry, or a
// zombie waiting for init.
func gone(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(st), ") Z ")
	}, 10*time.Second, 20*time.Millisecond, "process %d outlived the runner", pid)
}

// waitFile waits (at most 20s) for path to hold a line, and returns it.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	var s string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		s = strings.TrimSpace(string(b))
		return err == nil && strings.HasSuffix(string(b), "\n")
	}, 20*time.Second, 10*time.Millisecond, "%s was not written", path)
	return s
}

// runAsync runs c and returns its error on a channel; the test fails if it
// has not returned within 60s (a runner that waits for a grandchild would).
func runAsync(t *testing.T, ctx context.Context, c Cmd) <-chan error {
	got := make(chan error, 1)
	go func() { got <- c.Run(ctx) }()
	out := make(chan error, 1)
	go func() {
		select {
		case err := <-got:
			out <- err
		case <-time.After(60 * time.Second):
			out <- errors.New("Run did not return within 60s")
		}
	}()
	return out
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		timeout time.Duration
		check   func(t *testing.T, err error)
		wantOut string
	}{
		{"success, environment passed through", []string{"sh", "-c", "echo $SLIPWAY_TEST_MARK"}, 0,
			func(t *testing.T, err error) { require.NoError(t, err) }, "mark-42\n"},
		{"non-zero exit", []string{"sh", "-c", "echo partial; exit 3"}, 0, func(t *testing.T, err error) {
			var xe *ExitError
			require.ErrorAs(t, err, &xe)
			assert.Equal(t, 3, xe.Status)
			assert.Nil(t, xe.Stopped)
			assert.Contains(t, err.Error(), "command sh exited with status 3 after ")
		}, "partial\n"},
		{"timeout", []string{"sleep", "30"}, 200 * time.Millisecond, func(t *testing.T, err error) {
			var xe *ExitError
			require.ErrorAs(t, err, &xe)
			assert.Equal(t, syscall.SIGTERM, xe.Signal)
			assert.Contains(t, err.Error(), "command sleep was killed by terminated")
			assert.Contains(t, err.Error(), "(the deadline passed)")
		}, ""},
		{"not found", []string{"/no/such/slipway-command"}, 0, func(t *testing.T, err error) {
			var se *StartError
			require.ErrorAs(t, err, &se)
			assert.ErrorContains(t, err, "start command /no/such/slipway-command")
		}, ""},
		{"no command", nil, 0, func(t *testing.T, err error) {
			var se *StartError
			require.ErrorAs(t, err, &se)
			assert.ErrorContains(t, err, "no command given")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SLIPWAY_TEST_MARK", "mark-42")
			var out bytes.Buffer
			err := Cmd{Args: tc.args, Stdout: &out, Stderr: &out, Timeout: tc.timeout, TimeoutReason: "the deadline passed",
				GracePeriod: 5 * time.Second}.Run(context.Background())
			tc.check(t, err)
			assert.Equal(t, tc.wantOut, out.String())
		})
	}
}

func TestRunStopsTheWholeGroupWhenCancelled(t *testing.T) {
	// a build that starts a child of its own, which does not hold the
	// output open: stopping only the shell would leave it running
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := `sleep 1000 >/dev/null 2>&1 &
echo $! > "$1"
wait`
	var logs syncbuffer.Buffer
	ctx, cancel := context.WithCancelCause(context.Background())
	why := errors.New("the lock was lost")
	got := runAsync(t, ctx, Cmd{Args: []string{"sh", "-c", script, "sh", pidFile}, Name: "asset build",
		GracePeriod: 10 * time.Second, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	grandchild, err := strconv.Atoi(waitFile(t, pidFile))
	require.NoError(t, err)
	cancel(why)
	err = <-got
	var xe *ExitError
	require.ErrorAs(t, err, &xe, "%v", err)
	assert.ErrorIs(t, err, why, "the context's cause is the error's")
	assert.Contains(t, err.Error(), "asset build was killed by terminated")
	assert.Contains(t, logs.String(), `reason="the lock was lost" signal=terminated`)
	assert.NotContains(t, logs.String(), "grace period over", "SIGTERM was enough")
	gone(t, grandchild)
}

func TestRunKillsAfterTheGracePeriod(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	var logs syncbuffer.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	got := runAsync(t, ctx, Cmd{Args: []string{"sh", "-c", `trap '' TERM; echo > "$1"; while :; do sleep 0.05; done`, "sh", ready},
		GracePeriod: 200 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	waitFile(t, ready)
	cancel()
	err := <-got
	var xe *ExitError
	require.ErrorAs(t, err, &xe, "%v", err)
	assert.Equal(t, syscall.SIGKILL, xe.Signal)
	assert.ErrorIs(t, err, context.Canceled)
	// the order of events: asked to stop, then killed
	l := logs.String()
	stopAt, killAt := strings.Index(l, "stopping the command"), strings.Index(l, "grace period over: killing the command")
	require.True(t, stopAt >= 0 && killAt >= 0, l)
	assert.Less(t, stopAt, killAt)
}

func TestRunNotStartedWhenTheContextIsDone(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("shutting down"))
	err := Cmd{Args: []string{"touch", marker}}.Run(ctx)
	require.ErrorContains(t, err, "command touch not started: shutting down")
	assert.NoFileExists(t, marker)
}

func TestRunKillsWhatTheChildLeftBehind(t *testing.T) {
	// the child exits 0, leaving a process in its group that holds the
	// output pipe open: Run returns after WaitDelay and kills it
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	var out syncbuffer.Buffer
	got := runAsync(t, context.Background(), Cmd{Args: []string{"sh", "-c", `sleep 1000 & echo $! > "$1"; echo done`, "sh", pidFile},
		Stdout: &out, WaitDelay: 100 * time.Millisecond})
	require.NoError(t, <-got)
	assert.Equal(t, "done\n", out.String())
	pid, err := strconv.Atoi(waitFile(t, pidFile))
	require.NoError(t, err)
	gone(t, pid)
}

func TestSecretSplitAcrossPipeReadsIsMasked(t *testing.T) {
	const secret = "AKIAsecret-9f8e7d6c5b4a"
	for _, tc := range []struct {
		name string
		// the script prints $1 (the secret) in two writes
		script string
	}{
		// the second half is written only after a pause, so the first
		// read cannot hold it
		{"paused mid-secret", `half=$(( ${#1} / 2 )); printf 'token %s' "$(echo "$1" | cut -c1-$half)"; sleep 0.2; printf '%s\n' "$(echo "$1" | cut -c$((half+1))-)"`},
		// as seen: 32,762 bytes of output before the secret
		{"at byte 32,762", `head -c 32762 /dev/zero | tr '\0' x; printf '%s' "$(echo "$1" | cut -c1-6)"; sleep 0.2; printf '%s\n' "$(echo "$1" | cut -c7-)"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			red := &redact.Redactor{}
			red.Add(secret)
			var out, errOut syncbuffer.Buffer
			err := Cmd{Args: []string{"sh", "-c", tc.script + `; printf '%s\n' "$1" >&2`, "sh", secret},
				Stdout: red.Writer(&out), Stderr: red.Writer(&errOut)}.Run(context.Background())
			require.NoError(t, err)
			assert.NotContains(t, out.String(), "secret-9f8e", "a piece of the secret got through")
			assert.NotContains(t, out.String(), "AKIA", "a piece of the secret got through")
			assert.Contains(t, out.String(), redact.Mask+"\n")
			assert.Equal(t, redact.Mask+"\n", errOut.String())
		})
	}
}

// A step that ran a child exits as the child's end says: 2 when it could
// not be started, 1 when it failed, with the child's error inside.
func TestStepError(t *testing.T) {
	ctx := context.Background()
	assert.NoError(t, StepError(Cmd{Args: []string{"true"}}.Run(ctx)))

	err := StepError(Cmd{Args: []string{"/no/such/program"}}.Run(ctx))
	assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
	var se *StartError
	assert.ErrorAs(t, err, &se)

	err = StepError(Cmd{Args: []string{"sh", "-c", "exit 4"}}.Run(ctx))
	assert.Equal(t, exitcode.Failed, exitcode.Code(err))
	var xe *ExitError
	require.ErrorAs(t, err, &xe)
	assert.Equal(t, 4, xe.Status)
}
