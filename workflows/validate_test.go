package workflows

import (
	"context"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/slipway-deploy/slipway/internal/promoterserver"
)

// argoValidate runs Argo's own validation over every manifest Argo reads:
// each WorkflowTemplate as `argo lint` does (Lint: true), each
// CronWorkflow and hook Workflow as the controller does on submission
// (default options), its workflowTemplateRef and templateRefs resolved
// among our templates, and the executor plugin as the controller loads it.
// Problems are keyed by the template's name, "CronWorkflow/" and the
// CronWorkflow's, or the hook's file.
func argoValidate(m *manifests) map[string]error {
	problems := map[string]error{}
	for name, wt := range m.templates {
		if err := validate.ValidateWorkflowTemplate(m, noClusterTemplates{}, wt, nil, validate.ValidateOpts{Lint: true}); err != nil {
			problems[name] = err
		}
	}
	for name, cw := range m.crons {
		if err := validate.ValidateCronWorkflow(context.Background(), m, noClusterTemplates{}, cw, nil); err != nil {
			problems["CronWorkflow/"+name] = err
		}
	}
	for file, wf := range m.hooks {
		if err := validate.ValidateWorkflow(m, noClusterTemplates{}, wf, nil, validate.ValidateOpts{}); err != nil {
			problems[file] = err
		}
	}
	if err := m.plugin.Validate(); err != nil {
		problems["plugin"] = err
	}
	return problems
}

func TestManifestsPassArgoValidation(t *testing.T) {
	m := load(t)
	assert.Equal(t, []string{"bump-tag", "migrate", "notify", "post-sync", "precompile-assets", "promoter-plan", "sync-fail"}, m.templateNames())
	assert.Equal(t, []string{"promoter-plan"}, m.cronNames())
	assert.Equal(t, []string{"hooks/post-sync.yaml", "hooks/pre-sync.yaml", "hooks/sync-fail.yaml", "hooks/sync.yaml"}, m.hookFiles())
	assert.Empty(t, argoValidate(m))
}

// Every other document under workflows/ and plugin/ is a kind the cluster
// (or kustomize, or the promoter) knows, with no unknown field.
func TestOtherManifestsDecodeStrictly(t *testing.T) {
	kinds := map[string]func() any{
		"ServiceAccount": func() any { return &corev1.ServiceAccount{} },
		"Secret":         func() any { return &corev1.Secret{} },
		"ConfigMap":      func() any { return &corev1.ConfigMap{} },
		"Role":           func() any { return &rbacv1.Role{} },
		"RoleBinding":    func() any { return &rbacv1.RoleBinding{} },
		"Kustomization":  func() any { return &types.Kustomization{} },
	}
	seen := map[string]int{}
	for _, d := range readDocs(t, workflowsDir, pluginDir) {
		switch d.kind {
		case "WorkflowTemplate", "CronWorkflow", "Workflow", "ExecutorPlugin": // argoValidate's
		case "": // only the promoter's configuration has no kind
			_, err := promoterserver.ParseConfig(d.raw)
			assert.NoError(t, err, "%s: not a Kubernetes object, so the promoter's configuration", d.file)
		default:
			mk, ok := kinds[d.kind]
			if !assert.True(t, ok, "%s: unexpected kind %q", d.file, d.kind) {
				continue
			}
			assert.NoError(t, yaml.UnmarshalStrict(d.raw, mk()), d.file)
		}
		seen[d.kind]++
	}
	for _, kind := range []string{"ServiceAccount", "Secret", "ConfigMap", "Role", "RoleBinding", "Kustomization", ""} {
		assert.Positive(t, seen[kind], "no %q document was checked", kind)
	}
}

// The validation really runs: each deliberately broken copy is refused,
// for the reason broken.
func TestArgoValidationRefusesBrokenCopies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		where  string // the template or hook that is refused
		mutate func(m *manifests)
		want   string
	}{
		{"an input that does not exist", "post-sync", func(m *manifests) {
			c := tmpl(m, "post-sync", "smoke-test").Container
			c.Args = append(c.Args, "--base-url={{inputs.parameters.nope}}")
		}, "inputs.parameters.nope"},
		{"a templateRef to no template", "post-sync", func(m *manifests) {
			tmpl(m, "post-sync", "exit").Steps[0].Steps[0].TemplateRef.Name = "notifier"
		}, `no WorkflowTemplate "notifier"`},
		{"a templateRef to no template inside a template", "sync-fail", func(m *manifests) {
			tmpl(m, "sync-fail", "sync-fail").Steps[0].Steps[0].TemplateRef.Template = "notice"
		}, "notice"},
		{"an argument the template does not take", "sync-fail", func(m *manifests) {
			args := &tmpl(m, "sync-fail", "sync-fail").Steps[0].Steps[0].Arguments
			args.Parameters = args.Parameters[1:] // app: notify requires it
		}, "inputs.parameters.app was not supplied"},
		{"a hook without a parameter that has no default", "hooks/post-sync.yaml", func(m *manifests) {
			args := &m.hooks["hooks/post-sync.yaml"].Spec.Arguments
			args.Parameters = args.Parameters[1:] // app
		}, "spec.arguments.app.value or spec.arguments.app.valueFrom is required"},
		{"a hook on a template that does not exist", "hooks/sync.yaml", func(m *manifests) {
			m.hooks["hooks/sync.yaml"].Spec.WorkflowTemplateRef.Name = "migrations"
		}, `no WorkflowTemplate "migrations"`},
		{"an exit handler that does not exist", "post-sync", func(m *manifests) {
			m.templates["post-sync"].Spec.OnExit = "exit-handler"
		}, "exit-handler"},
		{"an output of a step that does not exist", "bump-tag", func(m *manifests) {
			tmpl(m, "bump-tag", "bump-tag").Outputs.Parameters[0].ValueFrom = &wfv1.ValueFrom{Parameter: "{{steps.nope.outputs.parameters.x}}"}
		}, "steps.nope"},
		{"a malformed schedule", "CronWorkflow/promoter-plan", func(m *manifests) {
			m.crons["promoter-plan"].Spec.Schedules = []string{"0 7 * *"}
		}, "cron schedule 0 7 * * is malformed"},
		{"a CronWorkflow on a template that does not exist", "CronWorkflow/promoter-plan", func(m *manifests) {
			m.crons["promoter-plan"].Spec.WorkflowSpec.WorkflowTemplateRef.Name = "plan"
		}, `no WorkflowTemplate "plan"`},
		{"a CronWorkflow name too long for its Workflows' names", "CronWorkflow/promoter-plan", func(m *manifests) {
			m.crons["promoter-plan"].Name = "promoter-plan-of-every-app-in-every-environment-daily"
		}, "must not be more than 52 characters"},
		{"a CronWorkflow with a schedule twice", "CronWorkflow/promoter-plan", func(m *manifests) {
			m.crons["promoter-plan"].Spec.Schedule = "0 7 * * *"
		}, "both Spec.Schedule and Spec.Schedules"},
		{"a report without its title", "promoter-plan", func(m *manifests) {
			args := &tmpl(m, "promoter-plan", "exit").Steps[0].Steps[0].Arguments
			args.Parameters = args.Parameters[1:] // title: notify's report requires it
		}, "inputs.parameters.title was not supplied"},
		{"an output of the plan read from nowhere, seen through the CronWorkflow", "CronWorkflow/promoter-plan", func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").Outputs.Parameters[0].ValueFrom = &wfv1.ValueFrom{}
		}, "cannot validate Workflow: valueFrom type unspecified"},
		{"a plugin sidecar without resources", "plugin", func(m *manifests) {
			m.plugin.Spec.Sidecar.Container.Resources.Limits = nil
		}, "resources limits are mandatory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t).deepCopy()
			tc.mutate(m)
			problems := argoValidate(m)
			require.Contains(t, problems, tc.where, "the broken copy is refused")
			assert.ErrorContains(t, problems[tc.where], tc.want)
		})
	}
}

// tmpl is template name of WorkflowTemplate wt in m.
func tmpl(m *manifests, wt, name string) *wfv1.Template {
	for i := range m.templates[wt].Spec.Templates {
		if t := &m.templates[wt].Spec.Templates[i]; t.Name == name {
			return t
		}
	}
	panic("no template " + name + " in " + wt)
}
