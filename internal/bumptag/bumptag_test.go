package bumptag

import (
	"context"
	"testing"
	"time"

	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

const (
	stagingFrontend = "charts/app-config/image-tags/staging/frontend"
	prodFrontend    = "charts/app-config/image-tags/production/frontend"
)

func config(t *testing.T, s *gitrepo.Server) Config {
	layout, err := chartsrepo.NewLayout("", "", tagfile.Keys{})
	require.NoError(t, err)
	policy, err := release.NewPolicy("")
	require.NoError(t, err)
	return Config{Layout: layout, Policy: policy, Writer: gitwriter.New(gitwriter.Options{
		URL: s.URL(), Auth: &gogithttp.BasicAuth{Username: gitrepo.User, Password: gitrepo.Password},
		Backoff: func(int, time.Duration) time.Duration { return time.Millisecond },
	})}
}

func boolp(b bool) *bool { return &b }

func TestDecisions(t *testing.T) {
	tests := []struct {
		name        string
		file        string // staging/frontend content; "" = missing
		req         Request
		wantChanged bool
		wantFile    string
		wantReason  string
		wantCode    int
		wantSubject string
	}{
		{name: "release sets promote true",
			file: "image_tag: v41\npromote_deployment: true\n", req: Request{Tag: "v42"},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "updated",
			wantSubject: "Update frontend image tag to v42 for staging"},
		{name: "branch deploy sets promote false",
			file: "image_tag: v41\npromote_deployment: true\n", req: Request{Tag: "0123456789abcdef0123456789abcdef01234567"},
			wantChanged: true, wantFile: "image_tag: 0123456789abcdef0123456789abcdef01234567\npromote_deployment: false\n", wantReason: "updated"},
		{name: "explicit promote false on a release",
			file: "image_tag: v41\n", req: Request{Tag: "v42", Promote: boolp(false)},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: false\n"},
		{name: "already there",
			file: "image_tag: v42\npromote_deployment: true\n", req: Request{Tag: "v42"},
			wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "already at v42"},
		{name: "same tag, flag differs: flag updated",
			file: "image_tag: v42\npromote_deployment: false\n", req: Request{Tag: "v42"},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: true\n"},
		{name: "downgrade refused",
			file: "image_tag: v42\npromote_deployment: true\n", req: Request{Tag: "v41"},
			wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "refused downgrade: staging runs v42, newer than v41"},
		{name: "v9 after v10 is a downgrade",
			file: "image_tag: v10\n", req: Request{Tag: "v9"},
			wantFile: "image_tag: v10\n", wantReason: "refused downgrade"},
		{name: "rollback allowed and recorded",
			file: "image_tag: v42\npromote_deployment: true\n", req: Request{Tag: "v41", AllowDowngrade: true},
			wantChanged: true, wantFile: "image_tag: v41\npromote_deployment: true\n", wantReason: "rolled back from v42",
			wantSubject: "Roll back frontend image tag to v41 for staging"},
		{name: "a release over a branch deploy is no downgrade",
			file: "image_tag: 0123456789abcdef0123456789abcdef01234567\n", req: Request{Tag: "v1"},
			wantChanged: true, wantFile: "image_tag: v1\npromote_deployment: true\n"},
		{name: "compare-and-swap holds",
			file: "image_tag: v41\n", req: Request{Tag: "v42", ExpectCurrent: "v41"},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: true\n"},
		{name: "compare-and-swap fails",
			file: "image_tag: v40\n", req: Request{Tag: "v42", ExpectCurrent: "v41"},
			wantFile: "image_tag: v40\n", wantCode: exitcode.Held},
		{name: "compare-and-swap after success is a no-op",
			file: "image_tag: v42\npromote_deployment: true\n", req: Request{Tag: "v42", ExpectCurrent: "v41"},
			wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "already at v42"},
		{name: "missing file",
			req: Request{Tag: "v1"}, wantCode: exitcode.Invalid},
		{name: "missing file with create",
			req: Request{Tag: "v1", Create: true}, wantChanged: true, wantFile: "image_tag: v1\npromote_deployment: true\n"},
		{name: "malformed file",
			file: "image_tag: [v1\n", req: Request{Tag: "v2"}, wantFile: "image_tag: [v1\n", wantCode: exitcode.Invalid},
		{name: "custom message",
			file: "image_tag: v1\n", req: Request{Tag: "v2", Message: "Deploy {{.Tag}} (was {{.PreviousTag}})"},
			wantChanged: true, wantFile: "image_tag: v2\npromote_deployment: true\n", wantSubject: "Deploy v2 (was v1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{prodFrontend: "image_tag: v1\n"}
			if tt.file != "" {
				files[stagingFrontend] = tt.file
			}
			s := gitrepo.New(t, files)
			head := s.Head()
			req := tt.req
			req.App, req.Env = "frontend", "staging"
			res, err := Run(context.Background(), config(t, s), req)
			assert.Equal(t, tt.wantCode, exitcode.Code(err), "%v", err)
			assert.Equal(t, tt.wantChanged, res.Changed)
			got, _ := s.Read(stagingFrontend)
			assert.Equal(t, tt.wantFile, got)
			if tt.wantReason != "" {
				assert.Contains(t, res.Reason, tt.wantReason)
			}
			if !tt.wantChanged {
				assert.Equal(t, head, s.Head(), "no commit")
				return
			}
			assert.Equal(t, s.Head(), res.Commit)
			msg := s.Message("main")
			if tt.wantSubject != "" {
				assert.Equal(t, tt.wantSubject, msg[:len(tt.wantSubject)])
			}
			assert.Contains(t, msg, "Slipway-App: frontend\nSlipway-Env: staging\nSlipway-Tag: "+tt.req.Tag+"\n")
			if tt.req.AllowDowngrade {
				assert.Contains(t, msg, "Slipway-Previous-Tag: v42\n")
				assert.Contains(t, msg, "Slipway-Rollback: true")
			}
		})
	}
}

func TestTrailers(t *testing.T) {
	s := gitrepo.New(t, map[string]string{stagingFrontend: "image_tag: v1\n"})
	_, err := Run(context.Background(), config(t, s), Request{App: "frontend", Env: "staging", Tag: "v2",
		Workflow: "5f0e-uid", SourceEnv: "integration"})
	require.NoError(t, err)
	assert.Equal(t, "Update frontend image tag to v2 for staging\n\n"+
		"Slipway-App: frontend\nSlipway-Env: staging\nSlipway-Tag: v2\nSlipway-Previous-Tag: v1\n"+
		"Slipway-Source-Env: integration\nSlipway-Workflow: 5f0e-uid", s.Message("main"))
	// git itself reads them as trailers
	assert.Equal(t, "v1", s.Git("log", "-1", "--format=%(trailers:key=Slipway-Previous-Tag,valueonly)"))
}

func TestInvalidBeforeNetwork(t *testing.T) {
	layout, err := chartsrepo.NewLayout("", "", tagfile.Keys{})
	require.NoError(t, err)
	policy, _ := release.NewPolicy("")
	// A writer pointing nowhere: validation must fail before it is used.
	cfg := Config{Layout: layout, Policy: policy, Writer: gitwriter.New(gitwriter.Options{URL: "http://127.0.0.1:1/none"})}
	for _, req := range []Request{
		{App: "../etc", Env: "staging", Tag: "v1"},
		{App: "frontend", Env: "preview", Tag: "v1"},
		{App: "frontend", Env: "staging", Tag: "v 1"},
		{App: "frontend", Env: "staging", Tag: "v1\n"},
		{App: "frontend", Env: "staging", Tag: "v1", ExpectCurrent: "a b"},
		{App: "frontend", Env: "staging", Tag: "v1", Message: "{{.Nope}}"},
		{App: "frontend", Env: "staging", Tag: "v1", SourceEnv: "nowhere"},
	} {
		_, err := Run(context.Background(), cfg, req)
		assert.Equal(t, exitcode.Invalid, exitcode.Code(err), "%+v: %v", req, err)
	}
}

// A Gate is asked on every attempt, at the head the commit would be pushed
// onto, and its "no" stops the write even when an earlier attempt said yes.
func TestGateDecidesAtEveryAttemptsHead(t *testing.T) {
	const flag = "charts/app-config/image-tags/staging/stop"
	s := gitrepo.New(t, map[string]string{stagingFrontend: "image_tag: v41\npromote_deployment: true\n"})
	// Lands while our first push is being received: the gate's input changes.
	next := s.Commit("stop", map[string]string{flag: "stop\n"})
	s.Git("update-ref", "refs/heads/main", next+"^")
	s.InstallHook("pre-receive", `[ -f "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main `+next+"\n")
	var heads []string
	gate := func(at gitwriter.Current) (bool, string, error) {
		heads = append(heads, at.Head)
		stop, err := at.Read(flag)
		if err != nil || stop.Exists {
			return false, "stopped by " + flag, err
		}
		return true, "", nil
	}
	res, err := Run(context.Background(), config(t, s), Request{App: "frontend", Env: "staging", Tag: "v42", Gate: gate})
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Equal(t, "stopped by "+flag, res.Reason)
	require.Len(t, heads, 2)
	assert.Equal(t, next, heads[1], "asked again at the head that moved")
	assert.Equal(t, next, s.Head(), "nothing pushed on top")
	got, _ := s.Read(stagingFrontend)
	assert.Equal(t, "image_tag: v41\npromote_deployment: true\n", got)
}

// With a Gate, bumptag's own rules do not decide again (the gate already
// did), but an edit that would change nothing is still no commit.
func TestGateReplacesBumptagsRules(t *testing.T) {
	s := gitrepo.New(t, map[string]string{stagingFrontend: "image_tag: v43\npromote_deployment: true\n"})
	yes := func(gitwriter.Current) (bool, string, error) { return true, "", nil }
	res, err := Run(context.Background(), config(t, s), Request{App: "frontend", Env: "staging", Tag: "v42", Gate: yes,
		Promote: boolp(true), Message: "Roll {{.Tag}}"})
	require.NoError(t, err)
	assert.True(t, res.Changed, "the gate allowed it: no downgrade refusal")
	head := s.Head()
	res, err = Run(context.Background(), config(t, s), Request{App: "frontend", Env: "staging", Tag: "v42", Gate: yes, Promote: boolp(true)})
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Equal(t, "already at v42", res.Reason)
	assert.Equal(t, head, s.Head())
	assert.Empty(t, s.EmptyCommits())
}
