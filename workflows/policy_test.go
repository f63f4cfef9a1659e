package workflows

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// retryOnExitOne is every step's retry condition: exit code 1 means a retry
// may help; 2 (invalid input) and 3 (held by policy) never retry.
const retryOnExitOne = "asInt(lastRetry.exitCode) == 1"

// exitOneIsAnAnswer are the steps whose exit code 1 is an answer, not a
// failure a retry may fix, and why: they retry on Argo's errors only (a pod
// lost: retryPolicy OnError, no expression).
var exitOneIsAnAnswer = map[string]string{
	"promoter-plan/plan": "promoter plan --fail-on-drift exits 1 on drift",
}

// secretName matches the names of things that hold a secret: they reach a
// step only through secretKeyRef or a mounted file (a *_FILE variable
// holds a path), never a parameter or a literal value.
var secretName = regexp.MustCompile(`(?i)token|password|secret|webhook|credential|database.?url|access.?key`)

// policyProblems checks what every step of every template follows: a
// retry on exit code 1 only, with backoff; a deadline; non-root, read-only
// root, no privilege escalation, no capabilities; requests and limits;
// images from parameters; secrets only from Secrets; outputs written to a
// writable emptyDir. A CronWorkflow runs a WorkflowTemplate, so its steps
// are checked there.
func policyProblems(m *manifests) []string {
	var problems []string
	for _, wtName := range m.templateNames() {
		wt := m.templates[wtName]
		for _, p := range wt.Spec.Arguments.Parameters {
			problems = append(problems, secretParameter(wtName, p.Name)...)
		}
		for i := range wt.Spec.Templates {
			tmpl := &wt.Spec.Templates[i]
			where := wtName + "/" + tmpl.Name
			for _, p := range tmpl.Inputs.Parameters {
				problems = append(problems, secretParameter(where, p.Name)...)
			}
			if tmpl.Container == nil && tmpl.Plugin == nil {
				continue
			}
			problems = append(problems, retryProblems(where, tmpl.RetryStrategy)...)
			if tmpl.Container == nil {
				continue // a plugin step runs in Argo's agent pod: no pod, no deadline of its own
			}
			if tmpl.ActiveDeadlineSeconds == nil {
				problems = append(problems, where+": no activeDeadlineSeconds")
			}
			problems = append(problems, containerPolicy(where, *tmpl.Container)...)
			for _, ic := range tmpl.InitContainers {
				problems = append(problems, containerPolicy(where+" init container "+ic.Name, ic.Container)...)
			}
			problems = append(problems, outputsProblems(where, wt, tmpl)...)
		}
	}
	for _, name := range m.cronNames() {
		ws := m.crons[name].Spec.WorkflowSpec
		where := "CronWorkflow/" + name
		if ws.WorkflowTemplateRef == nil || len(ws.Templates) > 0 {
			problems = append(problems, where+": runs templates of its own, not a WorkflowTemplate (workflowTemplateRef) whose steps these checks read")
		}
		for _, p := range ws.Arguments.Parameters {
			problems = append(problems, secretParameter(where, p.Name)...)
		}
	}
	return problems
}

// deref is *b, or unset when b is nil.
func deref(b *bool, unset bool) bool {
	if b == nil {
		return unset
	}
	return *b
}

func secretParameter(where, name string) []string {
	if secretName.MatchString(name) {
		return []string{fmt.Sprintf("%s: parameter %q looks like a secret: take it from a Secret", where, name)}
	}
	return nil
}

func retryProblems(where string, rs *wfv1.RetryStrategy) []string {
	why, answer := exitOneIsAnAnswer[where]
	switch {
	case rs == nil:
		return []string{where + ": no retryStrategy"}
	case answer && (rs.RetryPolicy != wfv1.RetryPolicyOnError || rs.Expression != ""):
		return []string{fmt.Sprintf("%s: exit 1 is an answer here (%s): retry on Argo's errors only (retryPolicy %s, no expression)",
			where, why, wfv1.RetryPolicyOnError)}
	case !answer && rs.Expression != retryOnExitOne:
		return []string{fmt.Sprintf("%s: retries on %q, not on exit code 1 only (%s)", where, rs.Expression, retryOnExitOne)}
	case rs.Limit == nil:
		return []string{where + ": retries without a limit"}
	case rs.Backoff == nil || rs.Backoff.Duration == "" || rs.Backoff.Factor == nil:
		return []string{where + ": retries without backoff (duration and factor)"}
	}
	return nil
}

func containerPolicy(where string, c corev1.Container) []string {
	var problems []string
	if !isParameterRef(c.Image) {
		problems = append(problems, fmt.Sprintf("%s: image %q is not a parameter", where, c.Image))
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		problems = append(problems, where+": no securityContext")
	case !deref(sc.RunAsNonRoot, false):
		problems = append(problems, where+": may run as root (runAsNonRoot)")
	case !deref(sc.ReadOnlyRootFilesystem, false):
		problems = append(problems, where+": writable root file system (readOnlyRootFilesystem)")
	case deref(sc.AllowPrivilegeEscalation, true):
		problems = append(problems, where+": allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0:
		problems = append(problems, where+": capabilities are not drop [ALL]")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.Cmp(resource.Quantity{}) <= 0 {
			problems = append(problems, fmt.Sprintf("%s: no %s request", where, r))
		}
		if q, ok := c.Resources.Limits[r]; !ok || q.Cmp(resource.Quantity{}) <= 0 {
			problems = append(problems, fmt.Sprintf("%s: no %s limit", where, r))
		}
	}
	for _, e := range c.Env {
		if secretName.MatchString(e.Name) && !strings.HasSuffix(e.Name, "_FILE") && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			problems = append(problems, fmt.Sprintf("%s: %s is not from a Secret (secretKeyRef)", where, e.Name))
		}
	}
	return problems
}

// outputsProblems: with a read-only root file system, every --outputs-dir
// and every output file lies on a writable emptyDir (bump-tag once pushed
// its commit and then failed to write /tmp/outputs, on every retry).
func outputsProblems(where string, wt *wfv1.WorkflowTemplate, tmpl *wfv1.Template) []string {
	emptyDirs := map[string]bool{}
	for _, v := range append(append([]corev1.Volume{}, wt.Spec.Volumes...), tmpl.Volumes...) {
		emptyDirs[v.Name] = v.EmptyDir != nil
	}
	c := tmpl.Container
	writable := func(p string) bool {
		for _, m := range c.VolumeMounts {
			if emptyDirs[m.Name] && !m.ReadOnly && (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) {
				return true
			}
		}
		return false
	}
	var paths []string
	for _, a := range c.Args {
		for _, flag := range []string{"--outputs-dir=", "--" + outputFileFlag + "="} {
			if p, ok := strings.CutPrefix(a, flag); ok {
				paths = append(paths, p)
			}
		}
	}
	for _, p := range tmpl.Outputs.Parameters {
		if p.ValueFrom != nil && p.ValueFrom.Path != "" {
			paths = append(paths, p.ValueFrom.Path)
		}
	}
	var problems []string
	for _, p := range paths {
		if !writable(p) {
			problems = append(problems, fmt.Sprintf("%s: writes %s, which is on no writable emptyDir", where, p))
		}
	}
	return problems
}

func TestEveryStepFollowsThePolicy(t *testing.T) {
	m := load(t)
	assert.Empty(t, policyProblems(m))
	steps := 0
	for _, wt := range m.templates {
		for _, tmpl := range wt.Spec.Templates {
			if tmpl.Container != nil || tmpl.Plugin != nil {
				steps++
			}
		}
	}
	assert.Equal(t, 8, steps, "bump-tag, precompile-assets, migrate, notify and its report, smoke-test, promote and the plan are checked")
}

// Each deliberately broken copy fails the check, naming what broke.
func TestPolicyCheckRefusesBrokenCopies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(m *manifests)
		want   string
	}{
		{"a retry on every exit code", func(m *manifests) {
			tmpl(m, "migrate", "migrate").RetryStrategy.Expression = "asInt(lastRetry.exitCode) != 0"
		}, `migrate/migrate: retries on "asInt(lastRetry.exitCode) != 0"`},
		{"a plugin step retried on any failure", func(m *manifests) {
			tmpl(m, "post-sync", "promote").RetryStrategy.Expression = ""
		}, `post-sync/promote: retries on ""`},
		{"a retry without backoff", func(m *manifests) {
			tmpl(m, "bump-tag", "bump-tag").RetryStrategy.Backoff = nil
		}, "bump-tag/bump-tag: retries without backoff"},
		{"no retry", func(m *manifests) {
			tmpl(m, "notify", "notify").RetryStrategy = nil
		}, "notify/notify: no retryStrategy"},
		{"no deadline", func(m *manifests) {
			tmpl(m, "post-sync", "smoke-test").ActiveDeadlineSeconds = nil
		}, "post-sync/smoke-test: no activeDeadlineSeconds"},
		{"a writable root", func(m *manifests) {
			tmpl(m, "precompile-assets", "precompile-assets").Container.SecurityContext.ReadOnlyRootFilesystem = nil
		}, "precompile-assets/precompile-assets: writable root file system"},
		{"an init container that may escalate", func(m *manifests) {
			tmpl(m, "migrate", "migrate").InitContainers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
		}, "migrate/migrate init container slipway: allowPrivilegeEscalation is not false"},
		{"a capability kept", func(m *manifests) {
			tmpl(m, "bump-tag", "bump-tag").Container.SecurityContext.Capabilities.Add = []corev1.Capability{"NET_RAW"}
		}, "bump-tag/bump-tag: capabilities are not drop [ALL]"},
		{"root allowed", func(m *manifests) {
			tmpl(m, "notify", "notify").Container.SecurityContext.RunAsNonRoot = nil
		}, "notify/notify: may run as root"},
		{"no memory limit", func(m *manifests) {
			delete(tmpl(m, "post-sync", "smoke-test").Container.Resources.Limits, corev1.ResourceMemory)
		}, "post-sync/smoke-test: no memory limit"},
		{"an image not from a parameter", func(m *manifests) {
			tmpl(m, "bump-tag", "bump-tag").Container.Image = "slipway-deploy/slipway:v1"
		}, `bump-tag/bump-tag: image "slipway-deploy/slipway:v1" is not a parameter`},
		{"a secret as a literal value", func(m *manifests) {
			c := tmpl(m, "bump-tag", "bump-tag").Container
			c.Env = append(c.Env, corev1.EnvVar{Name: "SLIPWAY_GIT_TOKEN", Value: "{{workflow.parameters.charts-repo}}"})
		}, "bump-tag/bump-tag: SLIPWAY_GIT_TOKEN is not from a Secret"},
		{"a secret as a parameter", func(m *manifests) {
			p := &m.templates["sync-fail"].Spec.Arguments.Parameters
			*p = append(*p, wfv1.Parameter{Name: "slack-webhook-url"})
		}, `sync-fail: parameter "slack-webhook-url" looks like a secret`},
		{"a drift check retried on exit 1", func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").RetryStrategy.Expression = retryOnExitOne
		}, "promoter-plan/plan: exit 1 is an answer here (promoter plan --fail-on-drift exits 1 on drift): retry on Argo's errors only"},
		{"a drift check retried on every failure", func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").RetryStrategy.RetryPolicy = wfv1.RetryPolicyAlways
		}, "promoter-plan/plan: exit 1 is an answer here"},
		{"another step retried on Argo's errors only", func(m *manifests) {
			rs := tmpl(m, "notify", "report").RetryStrategy
			rs.RetryPolicy, rs.Expression = wfv1.RetryPolicyOnError, ""
		}, `notify/report: retries on "", not on exit code 1 only`},
		{"the plan written on the read-only root", func(m *manifests) {
			c := tmpl(m, "promoter-plan", "plan").Container
			c.VolumeMounts = c.VolumeMounts[:1] // the token only
		}, "promoter-plan/plan: writes /slipway/report/plan.md, which is on no writable emptyDir"},
		{"the git token as a literal value", func(m *manifests) {
			c := tmpl(m, "promoter-plan", "plan").Container
			c.Env = append(c.Env, corev1.EnvVar{Name: "SLIPWAY_GIT_TOKEN", Value: "ghp_x"})
		}, "promoter-plan/plan: SLIPWAY_GIT_TOKEN is not from a Secret"},
		{"a CronWorkflow with a step of its own", func(m *manifests) {
			ws := &m.crons["promoter-plan"].Spec.WorkflowSpec
			ws.Entrypoint, ws.Templates = "plan", []wfv1.Template{*tmpl(m, "promoter-plan", "plan")}
			ws.WorkflowTemplateRef = nil
		}, "CronWorkflow/promoter-plan: runs templates of its own, not a WorkflowTemplate"},
		{"a secret passed by the CronWorkflow", func(m *manifests) {
			ws := &m.crons["promoter-plan"].Spec.WorkflowSpec
			ws.Arguments.Parameters = append(ws.Arguments.Parameters, wfv1.Parameter{Name: "git-token"})
		}, `CronWorkflow/promoter-plan: parameter "git-token" looks like a secret`},
		{"outputs on the read-only root", func(m *manifests) {
			c := tmpl(m, "migrate", "migrate").Container
			c.VolumeMounts = c.VolumeMounts[:1] // the binary only
		}, "migrate/migrate: writes /slipway/outputs, which is on no writable emptyDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t).deepCopy()
			tc.mutate(m)
			assert.Contains(t, strings.Join(policyProblems(m), "\n"), tc.want)
		})
	}
}
