package workflows

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// object is one object the kustomization installs, as far as the checks
// below need it.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Type string            `json:"type"`
	Data map[string]string `json:"data"`
}

// repoFS is the repository's workflows/ and plugin/ folders in memory, for
// kustomize, so a test can break a copy of them.
func repoFS(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for _, dir := range []string{workflowsDir, pluginDir} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return mem.WriteFile(filepath.Join("/repo/workflows", p), b)
		})
		require.NoError(t, err)
	}
	return mem
}

// render builds workflows/kustomization.yaml with kustomize's own library,
// as `kubectl apply -k workflows/` does.
func render(fsys filesys.FileSystem) ([]object, error) {
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, "/repo/workflows")
	if err != nil {
		return nil, err
	}
	var objs []object
	for _, r := range res.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// ref is a Secret, ConfigMap or ServiceAccount a manifest names, with the
// key it reads ("" for none or the whole object).
type ref struct {
	kind, name, key, by string
	optional            bool
}

// appParam is how a template names a per-app object: after the app.
var appParam = regexp.MustCompile(`\{\{\s*(workflow|inputs)\.parameters\.app\s*\}\}`)

// refs lists every Secret, ConfigMap and ServiceAccount the templates and
// the plugin's sidecar name, per-app names written <app>-....
func refs(m *manifests) []ref {
	var out []ref
	add := func(r ref) {
		r.name = appParam.ReplaceAllString(r.name, "<app>")
		out = append(out, r)
	}
	env := func(by string, c corev1.Container) {
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
			case e.ValueFrom.SecretKeyRef != nil:
				s := e.ValueFrom.SecretKeyRef
				add(ref{"Secret", s.Name, s.Key, by, s.Optional != nil && *s.Optional})
			case e.ValueFrom.ConfigMapKeyRef != nil:
				c := e.ValueFrom.ConfigMapKeyRef
				add(ref{"ConfigMap", c.Name, c.Key, by, c.Optional != nil && *c.Optional})
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				add(ref{"Secret", e.SecretRef.Name, "", by, false})
			}
			if e.ConfigMapRef != nil {
				add(ref{"ConfigMap", e.ConfigMapRef.Name, "", by, false})
			}
		}
	}
	volumes := func(by string, vs []corev1.Volume) {
		for _, v := range vs {
			switch {
			case v.Secret != nil:
				for _, k := range keysOf(v.Secret.Items) {
					add(ref{"Secret", v.Secret.SecretName, k, by, v.Secret.Optional != nil && *v.Secret.Optional})
				}
			case v.ConfigMap != nil:
				for _, k := range keysOf(v.ConfigMap.Items) {
					add(ref{"ConfigMap", v.ConfigMap.Name, k, by, v.ConfigMap.Optional != nil && *v.ConfigMap.Optional})
				}
			}
		}
	}
	for _, name := range m.templateNames() {
		wt := m.templates[name]
		add(ref{"ServiceAccount", wt.Spec.ServiceAccountName, "", name, false})
		volumes(name, wt.Spec.Volumes)
		for _, tmpl := range wt.Spec.Templates {
			by := name + "/" + tmpl.Name
			if tmpl.ServiceAccountName != "" {
				add(ref{"ServiceAccount", tmpl.ServiceAccountName, "", by, false})
			}
			volumes(by, tmpl.Volumes)
			if tmpl.Container != nil {
				env(by, *tmpl.Container)
			}
			for _, ic := range tmpl.InitContainers {
				env(by, ic.Container)
			}
		}
	}
	for _, name := range m.cronNames() {
		if sa := m.crons[name].Spec.WorkflowSpec.ServiceAccountName; sa != "" {
			add(ref{"ServiceAccount", sa, "", "CronWorkflow/" + name, false})
		}
	}
	env("plugin promoter", m.plugin.Spec.Sidecar.Container)
	return out
}

// keysOf is the keys a volume projects; "" for the whole object.
func keysOf(items []corev1.KeyToPath) []string {
	if len(items) == 0 {
		return []string{""}
	}
	var keys []string
	for _, i := range items {
		keys = append(keys, i.Key)
	}
	return keys
}

// userObject is a row of the README's list of what the user creates.
type userObject struct {
	kind, name string
	keys       []string
}

const userObjectsMarker = "<!-- user objects: checked by workflows TestEveryNamedObjectIsInstalledOrDocumented -->\n"

var (
	userRow    = regexp.MustCompile("^\\| (Secret|ConfigMap) \\| `([^`]+)` \\| ([^|]+) \\|")
	backquoted = regexp.MustCompile("`([^`]+)`")
	// createCmd is a README command creating a Secret or ConfigMap.
	createCmd = regexp.MustCompile(`kubectl (?:-n \S+ )?create (secret generic|configmap) (\S+)((?: --from-(?:literal|file)=[^ =]+=\S+)+)`)
	fromKey   = regexp.MustCompile(`--from-(?:literal|file)=([^ =]+)=`)
)

// readmeObjects reads the README's list of the objects the user creates.
func readmeObjects(readme string) ([]userObject, error) {
	_, block, ok := strings.Cut(readme, userObjectsMarker)
	if !ok {
		return nil, fmt.Errorf("the README's marker %q is missing", strings.TrimSpace(userObjectsMarker))
	}
	block, _, _ = strings.Cut(block, "\n\n")
	var out []userObject
	for _, line := range strings.Split(block, "\n")[2:] { // after the header
		r := userRow.FindStringSubmatch(line)
		if r == nil {
			return nil, fmt.Errorf("README: not a row of the user objects' list: %q", line)
		}
		o := userObject{kind: r[1], name: r[2]}
		for _, k := range backquoted.FindAllStringSubmatch(r[3], -1) {
			o.keys = append(o.keys, k[1])
		}
		out = append(out, o)
	}
	return out, nil
}

// installProblems checks that every Secret, ConfigMap and ServiceAccount a
// manifest names exists under that one name: created by the kustomization
// (with the key read), or in the README's list of what the user creates
// (with the key read), never both; that the README lists nothing no
// manifest uses, and its commands create the listed names with their keys;
// that every WorkflowTemplate, CronWorkflow and the plugin are installed; that each
// ServiceAccount has the token Secret Argo's agent looks for; and that the
// kustomization sets no namespace (`kubectl apply -n` chooses one).
func installProblems(m *manifests, objs []object, readme string) []string {
	var problems []string
	installed := map[string]object{}
	for _, o := range objs {
		installed[o.Kind+"/"+o.Metadata.Name] = o
		if o.Metadata.Namespace != "" {
			problems = append(problems, fmt.Sprintf("%s %s is installed into namespace %s, not the one chosen", o.Kind, o.Metadata.Name, o.Metadata.Namespace))
		}
	}
	users, err := readmeObjects(readme)
	if err != nil {
		return []string{err.Error()}
	}
	documented := map[string]userObject{}
	for _, u := range users {
		documented[u.kind+"/"+u.name] = u
	}
	used := map[string]bool{}
	for _, r := range refs(m) {
		id := r.kind + "/" + r.name
		used[id] = true
		o, isInstalled := installed[id]
		u, isDocumented := documented[id]
		switch {
		case isInstalled && isDocumented:
			problems = append(problems, fmt.Sprintf("%s %s (%s) is both installed and in the README's list of what you create", r.kind, r.name, r.by))
		case isInstalled:
			if _, ok := o.Data[r.key]; r.key != "" && !ok {
				problems = append(problems, fmt.Sprintf("%s reads key %q of %s %s, which the kustomization's has not", r.by, r.key, r.kind, r.name))
			}
		case isDocumented:
			if r.key != "" && !slices.Contains(u.keys, r.key) {
				problems = append(problems, fmt.Sprintf("%s reads key %q of %s %s, which the README does not list (%v)", r.by, r.key, r.kind, r.name, u.keys))
			}
		default:
			problems = append(problems, fmt.Sprintf("%s names %s %s, which is neither installed nor in the README's list of what you create", r.by, r.kind, r.name))
		}
		if r.kind == "ServiceAccount" {
			tok := installed["Secret/"+r.name+".service-account-token"]
			if tok.Type != string(corev1.SecretTypeServiceAccountToken) || tok.Metadata.Annotations[corev1.ServiceAccountNameKey] != r.name {
				problems = append(problems, fmt.Sprintf("ServiceAccount %s has no token Secret %s.service-account-token, which Argo's agent pod needs", r.name, r.name))
			}
		}
	}
	for _, u := range users {
		if !used[u.kind+"/"+u.name] {
			problems = append(problems, fmt.Sprintf("the README lists %s %s, which no manifest uses", u.kind, u.name))
		}
	}
	problems = append(problems, commandProblems(readme, documented)...)
	for _, name := range m.templateNames() {
		if _, ok := installed["WorkflowTemplate/"+name]; !ok {
			problems = append(problems, fmt.Sprintf("WorkflowTemplate %s is not installed", name))
		}
	}
	for _, name := range m.cronNames() {
		if _, ok := installed["CronWorkflow/"+name]; !ok {
			problems = append(problems, fmt.Sprintf("CronWorkflow %s is not installed", name))
		}
	}
	if cm := installed["ConfigMap/"+m.plugin.Name+"-executor-plugin"]; cm.Metadata.Labels["workflows.argoproj.io/configmap-type"] != "ExecutorPlugin" {
		problems = append(problems, fmt.Sprintf("the %s executor plugin's ConfigMap is not installed", m.plugin.Name))
	}
	return problems
}

// commandProblems: the README's `kubectl create` commands create objects of
// its list, with the listed keys.
func commandProblems(readme string, documented map[string]userObject) []string {
	var problems []string
	cmds := createCmd.FindAllStringSubmatch(readme, -1)
	if len(cmds) == 0 {
		return []string{"the README shows no kubectl create command"}
	}
	for _, c := range cmds {
		kind := map[string]string{"secret generic": "Secret", "configmap": "ConfigMap"}[c[1]]
		name := strings.ReplaceAll(c[2], "frontend", "<app>") // the README's example app
		u, ok := documented[kind+"/"+name]
		if !ok {
			u, ok = documented[kind+"/"+c[2]]
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("the README creates %s %s, which its list does not have", kind, c[2]))
			continue
		}
		for _, k := range fromKey.FindAllStringSubmatch(c[3], -1) {
			if !slices.Contains(u.keys, k[1]) {
				problems = append(problems, fmt.Sprintf("the README creates %s %s with key %q, which its list does not have", kind, c[2], k[1]))
			}
		}
	}
	return problems
}

// replaceIn replaces old by new in file of fsys; old must be there.
func replaceIn(t *testing.T, fsys filesys.FileSystem, file, old, new string) {
	t.Helper()
	b, err := fsys.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(b), old, "the broken copy breaks something")
	require.NoError(t, fsys.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1))))
}

func readREADME(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	return string(b)
}

func TestEveryNamedObjectIsInstalledOrDocumented(t *testing.T) {
	m := load(t)
	objs, err := render(repoFS(t))
	require.NoError(t, err)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.Kind+"/"+o.Metadata.Name)
	}
	sort.Strings(kinds)
	t.Logf("installed: %v", kinds)
	assert.Empty(t, installProblems(m, objs, readREADME(t)))
	rs := refs(m)
	assert.GreaterOrEqual(t, len(rs), 10, "the Secrets, ConfigMaps and ServiceAccounts named were found: %v", rs)
}

// Each deliberately broken copy fails the check, naming what broke. The
// first is the bug this check was written for: bump-tag mounted Secret
// slipway-charts-repo while the README created charts-repo-token.
func TestInstallCheckRefusesBrokenCopies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		breakM    func(m *manifests)
		breakFS   func(t *testing.T, fsys filesys.FileSystem)
		breakText func(readme string) string
		want      string
	}{
		{name: "a Secret under another name than the README's", breakM: func(m *manifests) {
			tmpl(m, "bump-tag", "bump-tag").Volumes[0].Secret.SecretName = "charts-repo-token"
		}, want: "bump-tag/bump-tag names Secret charts-repo-token, which is neither installed nor in the README's list"},
		{name: "the README's list without a Secret", breakText: func(s string) string {
			return regexp.MustCompile("(?m)^\\| Secret \\| `slipway-slack-webhook` .*\n").ReplaceAllString(s, "")
		}, want: "notify/notify names Secret slipway-slack-webhook, which is neither installed nor"},
		{name: "a key the README does not list", breakM: func(m *manifests) {
			tmpl(m, "migrate", "migrate").Container.Env[0].ValueFrom.SecretKeyRef.Key = "database-url"
		}, want: `migrate/migrate reads key "database-url" of Secret <app>-database, which the README does not list`},
		{name: "a stale name in the README", breakText: func(s string) string {
			return strings.Replace(s, userObjectsMarker+"| kind | name | keys | used by |\n|---|---|---|---|\n",
				userObjectsMarker+"| kind | name | keys | used by |\n|---|---|---|---|\n| Secret | `charts-repo-token` | `token` | nothing |\n", 1)
		}, want: "the README lists Secret charts-repo-token, which no manifest uses"},
		{name: "a README command creating another name", breakText: func(s string) string {
			return strings.Replace(s, "create secret generic slipway-slack-webhook", "create secret generic slack-webhook", 1)
		}, want: "the README creates Secret slack-webhook, which its list does not have"},
		{name: "a ServiceAccount nothing creates", breakM: func(m *manifests) {
			m.templates["migrate"].Spec.ServiceAccountName = "slipway-migrate"
		}, want: "migrate names ServiceAccount slipway-migrate, which is neither installed"},
		{name: "a ServiceAccount without its token Secret", breakFS: func(t *testing.T, fsys filesys.FileSystem) {
			replaceIn(t, fsys, "/repo/workflows/kustomization.yaml", "  - serviceaccount.yaml\n", "")
			require.NoError(t, fsys.WriteFile("/repo/workflows/sa.yaml", []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: slipway\n")))
			replaceIn(t, fsys, "/repo/workflows/kustomization.yaml", "resources:\n", "resources:\n  - sa.yaml\n")
		}, want: "ServiceAccount slipway has no token Secret slipway.service-account-token"},
		{name: "a template left out of the kustomization", breakFS: func(t *testing.T, fsys filesys.FileSystem) {
			replaceIn(t, fsys, "/repo/workflows/kustomization.yaml", "  - notify.yaml\n", "")
		}, want: "WorkflowTemplate notify is not installed"},
		{name: "a CronWorkflow left out of the kustomization", breakFS: func(t *testing.T, fsys filesys.FileSystem) {
			replaceIn(t, fsys, "/repo/workflows/kustomization.yaml", "  - promoter-plan.yaml\n", "")
		}, want: "CronWorkflow promoter-plan is not installed"},
		{name: "the plan's token under another Secret", breakM: func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").Volumes[0].Secret.SecretName = "slipway-git-token"
		}, want: "promoter-plan/plan names Secret slipway-git-token, which is neither installed nor in the README's list"},
		{name: "the plan's configuration under another ConfigMap", breakM: func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").Container.Env[0].ValueFrom.ConfigMapKeyRef.Name = "promoter-config"
		}, want: "promoter-plan/plan names ConfigMap promoter-config, which is neither installed nor"},
		{name: "the plan's configuration under another key", breakM: func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").Container.Env[0].ValueFrom.ConfigMapKeyRef.Key = "config.yaml"
		}, want: `promoter-plan/plan reads key "config.yaml" of ConfigMap slipway-promoter, which the kustomization's has not`},
		{name: "the plugin's configuration under another name", breakFS: func(t *testing.T, fsys filesys.FileSystem) {
			replaceIn(t, fsys, "/repo/plugin/kustomization.yaml", "\nconfigMapGenerator:\n  - name: slipway-promoter\n", "\nconfigMapGenerator:\n  - name: promoter-config\n")
		}, want: "plugin promoter names ConfigMap slipway-promoter, which is neither installed"},
		{name: "a namespace fixed in the kustomization", breakFS: func(t *testing.T, fsys filesys.FileSystem) {
			replaceIn(t, fsys, "/repo/workflows/kustomization.yaml", "resources:\n", "namespace: argo\nresources:\n")
		}, want: "WorkflowTemplate post-sync is installed into namespace argo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t).deepCopy()
			fsys := repoFS(t)
			readme := readREADME(t)
			switch {
			case tc.breakM != nil:
				tc.breakM(m)
			case tc.breakFS != nil:
				tc.breakFS(t, fsys)
			default:
				broken := tc.breakText(readme)
				require.NotEqual(t, readme, broken, "the README was broken")
				readme = broken
			}
			objs, err := render(fsys)
			require.NoError(t, err)
			assert.Contains(t, strings.Join(installProblems(m, objs, readme), "\n"), tc.want)
		})
	}
}

// kustomize renders the templates and CronWorkflows as they are: the
// installed copy of each is the file.
func TestKustomizationInstallsTheTemplatesUnchanged(t *testing.T) {
	m := load(t)
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(repoFS(t), "/repo/workflows")
	require.NoError(t, err)
	n, crons := 0, 0
	for _, r := range res.Resources() {
		b, err := r.AsYAML()
		require.NoError(t, err)
		switch r.GetKind() {
		case "WorkflowTemplate":
			var wt wfv1.WorkflowTemplate
			require.NoError(t, yaml.UnmarshalStrict(b, &wt))
			assert.Equal(t, m.templates[wt.Name].Spec, wt.Spec, wt.Name)
			n++
		case "CronWorkflow":
			var cw wfv1.CronWorkflow
			require.NoError(t, yaml.UnmarshalStrict(b, &cw))
			assert.Equal(t, m.crons[cw.Name].Spec, cw.Spec, cw.Name)
			crons++
		}
	}
	assert.Equal(t, len(m.templates), n)
	assert.Equal(t, len(m.crons), crons)
}

// The README's overlay, with the user's own promoter configuration,
// replaces ConfigMap slipway-promoter under that name: the plugin's
// sidecar names it inside the plugin's ConfigMap, where kustomize would not
// follow a hashed name.
func TestREADMEOverlayKeepsThePromoterConfigName(t *testing.T) {
	const remote = "https://github.com/slipway-deploy/slipway//workflows?ref=main"
	_, block, ok := strings.Cut(readREADME(t), "```yaml\n# kustomization.yaml\n")
	require.True(t, ok, "the README's overlay")
	block, _, _ = strings.Cut(block, "```")
	require.Contains(t, block, remote)
	fsys := repoFS(t)
	require.NoError(t, fsys.WriteFile("/overlay/kustomization.yaml", []byte(strings.Replace(block, remote, "../repo/workflows", 1))))
	require.NoError(t, fsys.WriteFile("/overlay/promoter.yaml", []byte("repo:\n  url: https://git.example/charts.git\n")))
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, "/overlay")
	require.NoError(t, err)
	var names []string
	for _, r := range res.Resources() {
		if r.GetKind() == "ConfigMap" {
			names = append(names, r.GetName())
			if r.GetName() == "slipway-promoter" {
				assert.Equal(t, map[string]string{"promoter.yaml": "repo:\n  url: https://git.example/charts.git\n"}, r.GetDataMap())
			}
		}
	}
	assert.ElementsMatch(t, []string{"promoter-executor-plugin", "slipway-promoter"}, names)
}

// The README's overlay for the release plan sets the CronWorkflow's
// schedule, time zone and parameters (Argo reads no parameter in a
// schedule), and what it renders passes Argo's validation.
func TestREADMEPlanOverlaySetsTheSchedule(t *testing.T) {
	const remote = "https://github.com/slipway-deploy/slipway//workflows?ref=main"
	_, block, ok := strings.Cut(readREADME(t), "```yaml\n# kustomization.yaml: the release plan")
	require.True(t, ok, "the README's overlay for the release plan")
	block, _, _ = strings.Cut(block, "```")
	require.Contains(t, block, remote)
	fsys := repoFS(t)
	require.NoError(t, fsys.WriteFile("/overlay/kustomization.yaml", []byte("# kustomization.yaml: the release plan"+strings.Replace(block, remote, "../repo/workflows", 1))))
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, "/overlay")
	require.NoError(t, err)
	m := load(t)
	var crons []wfv1.CronWorkflow
	for _, r := range res.Resources() {
		if r.GetKind() == "CronWorkflow" {
			b, err := r.AsYAML()
			require.NoError(t, err)
			var cw wfv1.CronWorkflow
			require.NoError(t, yaml.UnmarshalStrict(b, &cw))
			crons = append(crons, cw)
		}
	}
	require.Len(t, crons, 1)
	cw := crons[0]
	assert.Equal(t, []string{"0 9 * * 1-5"}, cw.Spec.Schedules)
	assert.Equal(t, "Europe/London", cw.Spec.Timezone)
	args := cw.Spec.WorkflowSpec.Arguments
	assert.Equal(t, "#releases", args.GetParameterByName("slack-channel").Value.String())
	assert.Equal(t, "72h", args.GetParameterByName("drift").Value.String())
	assert.NotEqual(t, m.crons[cw.Name].Spec.Schedules, cw.Spec.Schedules, "the overlay changed the schedule")
	m.crons[cw.Name] = &cw
	assert.Empty(t, argoValidate(m))
}
