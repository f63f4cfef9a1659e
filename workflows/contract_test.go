package workflows

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/slipway-deploy/slipway/internal/promoterserver"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

// The Slipway image holds every binary here (Dockerfile); an init
// container copies one into the app's container under copiedBinDir.
const (
	imageBinDir  = "/usr/local/bin"
	copiedBinDir = "/slipway/bin"
)

// outputFileFlag names the file a command writes its result to (promoter
// plan): a template may read an output from the path it gave there.
const outputFileFlag = "output-file"

var (
	contractsOnce sync.Once
	contracts     map[string]stepcli.Contract
	contractsErr  error
	// binDir holds the binaries built, until TestMain removes it.
	binDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaryContracts builds every step binary and the promoter into binDir,
// and reads each one's contract from the binary itself (`<binary>
// --describe`): the flags it defines, with their environment twins, and the
// outputs it writes. Keyed by binary name.
func binaryContracts(t *testing.T) map[string]stepcli.Contract {
	t.Helper()
	contractsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-binaries-")
		if err != nil {
			contractsErr = err
			return
		}
		binDir = dir
		build := exec.Command("go", "build", "-o", dir+"/", "../steps/...", "../plugin")
		if out, err := build.CombinedOutput(); err != nil {
			contractsErr = fmt.Errorf("go build: %w: %s", err, out)
			return
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			contractsErr = err
			return
		}
		contracts = map[string]stepcli.Contract{}
		for _, e := range entries {
			out, err := exec.Command(filepath.Join(dir, e.Name()), stepcli.DescribeArg).Output()
			if err != nil {
				contractsErr = fmt.Errorf("%s --describe: %w", e.Name(), err)
				return
			}
			var c stepcli.Contract
			if err := json.Unmarshal(out, &c); err != nil {
				contractsErr = fmt.Errorf("%s --describe: %w", e.Name(), err)
				return
			}
			contracts[c.Name] = c
		}
	})
	require.NoError(t, contractsErr)
	return contracts
}

// contractProblems checks what every template hands a binary against the
// binary's own contract: a command (`promoter plan`) is one the binary
// has, each flag in its args and each SLIPWAY_* variable is one the binary
// (or its command) defines, and each output read from a file is one the
// binary writes, in the folder given as --outputs-dir, or the file given
// as --output-file. For the binary-copy
// pattern, the init container copies a binary the image has to where the
// main container runs it. The plugin step's arguments are decoded as the
// promoter decodes them, and its outputs are the ones its replies carry.
func contractProblems(m *manifests, bins map[string]stepcli.Contract) []string {
	var problems []string
	for _, wtName := range m.templateNames() {
		for _, tmpl := range m.templates[wtName].Spec.Templates {
			where := wtName + "/" + tmpl.Name
			switch {
			case tmpl.Container != nil:
				problems = append(problems, containerProblems(where, &tmpl, bins)...)
			case tmpl.Plugin != nil:
				problems = append(problems, pluginProblems(where, &tmpl)...)
			}
		}
	}
	return problems
}

func containerProblems(where string, tmpl *wfv1.Template, bins map[string]stepcli.Contract) []string {
	var problems []string
	c := tmpl.Container
	if len(c.Command) != 1 {
		return []string{fmt.Sprintf("%s: command %q: want the binary alone, its flags in args", where, c.Command)}
	}
	bin := path.Base(c.Command[0])
	contract, ok := bins[bin]
	if !ok {
		return []string{fmt.Sprintf("%s: runs %s, which is no Slipway binary", where, c.Command[0])}
	}
	switch path.Dir(c.Command[0]) {
	case imageBinDir:
	case copiedBinDir:
		problems = append(problems, copyProblems(where, tmpl, bin, bins)...)
	default:
		problems = append(problems, fmt.Sprintf("%s: runs %s from neither %s nor %s", where, bin, imageBinDir, copiedBinDir))
	}
	args := c.Args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		i := slices.IndexFunc(contract.Commands, func(sub stepcli.Contract) bool { return sub.Name == args[0] })
		if i < 0 {
			return append(problems, fmt.Sprintf("%s: runs `%s %s`, a command %s does not have", where, bin, args[0], bin))
		}
		contract, bin, args = contract.Commands[i], bin+" "+args[0], args[1:]
	}
	given, p := argFlags(where, bin, args, contract)
	problems = append(problems, p...)
	outputsDir := given[stepcli.OutputsDirFlag]
	env := map[string]bool{}
	for _, f := range contract.Flags {
		for _, e := range f.Env {
			env[e] = true
		}
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "SLIPWAY_") && !env[e.Name] {
			problems = append(problems, fmt.Sprintf("%s: sets %s, which %s does not read", where, e.Name, bin))
		}
		if e.Name == "SLIPWAY_OUTPUTS_DIR" {
			outputsDir = e.Value
		}
	}
	for _, p := range tmpl.Outputs.Parameters {
		if p.ValueFrom == nil || p.ValueFrom.Path == "" {
			continue
		}
		dir, name := path.Split(p.ValueFrom.Path)
		switch {
		case given[outputFileFlag] != "" && p.ValueFrom.Path == given[outputFileFlag]:
		case outputsDir == "":
			problems = append(problems, fmt.Sprintf("%s: reads output %s but gives %s no --outputs-dir", where, p.ValueFrom.Path, bin))
		case path.Clean(dir) != path.Clean(outputsDir):
			problems = append(problems, fmt.Sprintf("%s: reads output %s outside --outputs-dir %s", where, p.ValueFrom.Path, outputsDir))
		case !slices.Contains(contract.Outputs, name):
			problems = append(problems, fmt.Sprintf("%s: reads output %q, which %s does not write (it writes %v)", where, name, bin, contract.Outputs))
		}
	}
	return problems
}

// argFlags reads the flags of args (up to "--", after which come the
// command's own words) and checks each is one of the contract's; given is
// each flag's value.
func argFlags(where, bin string, args []string, contract stepcli.Contract) (given map[string]string, problems []string) {
	given = map[string]string{}
	known := map[string]stepcli.FlagSpec{}
	for _, f := range contract.Flags {
		for _, n := range f.Names {
			known[n] = f
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") {
			problems = append(problems, fmt.Sprintf("%s: argument %q is not a flag of %s", where, a, bin))
			continue
		}
		f, ok := known[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: passes --%s, which %s does not define", where, name, bin))
			continue
		}
		if f.TakesValue && !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		given[name] = value
	}
	return given, problems
}

// copyProblems checks the binary-copy pattern: an init container runs
// `bin --install copiedBinDir` from the Slipway image (no shell or cp in
// it) into a volume that the main container mounts at copiedBinDir.
func copyProblems(where string, tmpl *wfv1.Template, bin string, bins map[string]stepcli.Contract) []string {
	want := []string{imageBinDir + "/" + bin, stepcli.InstallArg, copiedBinDir}
	mounted := func(c corev1.Container) string {
		for _, m := range c.VolumeMounts {
			if m.MountPath == copiedBinDir {
				return m.Name
			}
		}
		return ""
	}
	main := mounted(*tmpl.Container)
	for _, ic := range tmpl.InitContainers {
		cmd := append(append([]string{}, ic.Command...), ic.Args...)
		if !slices.Equal(cmd, want) {
			continue
		}
		if _, ok := bins[path.Base(cmd[0])]; !ok {
			return []string{fmt.Sprintf("%s: the init container runs %s, which is no Slipway binary", where, cmd[0])}
		}
		if v := mounted(ic.Container); v == "" || v != main {
			return []string{fmt.Sprintf("%s: the init container's %s and the main container's are not one volume", where, copiedBinDir)}
		}
		return nil
	}
	return []string{fmt.Sprintf("%s: runs %s/%s, but no init container runs %q", where, copiedBinDir, bin, want)}
}

func pluginProblems(where string, tmpl *wfv1.Template) []string {
	b, err := json.Marshal(executor.ExecuteTemplateArgs{Template: tmpl})
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", where, err)}
	}
	if _, _, ours, err := promoterserver.Decode(b); err != nil || !ours {
		return []string{fmt.Sprintf("%s: the promoter does not take this plugin step (ours=%t): %v", where, ours, err)}
	}
	var names []string
	for _, p := range tmpl.Outputs.Parameters {
		if p.ValueFrom == nil || p.ValueFrom.Supplied == nil {
			return []string{fmt.Sprintf("%s: output %s is not supplied by the plugin", where, p.Name)}
		}
		names = append(names, p.Name)
	}
	if !slices.Equal(names, promoterserver.OutputNames) {
		return []string{fmt.Sprintf("%s: outputs %v, but the promoter replies with %v", where, names, promoterserver.OutputNames)}
	}
	return nil
}

func TestTemplatesMatchTheBinariesContracts(t *testing.T) {
	bins := binaryContracts(t)
	for _, b := range []string{"bump-tag", "precompile-assets", "migrate", "smoke-test", "notify", "promoter"} {
		require.Contains(t, bins, b, "the binaries built")
	}
	m := load(t)
	assert.Empty(t, contractProblems(m, bins))

	// The promote step hands the promoter the release post-sync runs for.
	promote := tmpl(m, "post-sync", "promote")
	b, err := json.Marshal(executor.ExecuteTemplateArgs{Template: promote})
	require.NoError(t, err)
	_, args, ours, err := promoterserver.Decode(b)
	require.NoError(t, err)
	require.True(t, ours)
	assert.Equal(t, promoterserver.Args{App: "{{inputs.parameters.app}}", From: "{{inputs.parameters.environment}}",
		Tag: "{{inputs.parameters.image-tag}}"}, args)
}

// Each deliberately broken copy fails the check, naming what broke.
func TestContractCheckRefusesBrokenCopies(t *testing.T) {
	bins := binaryContracts(t)
	for _, tc := range []struct {
		name   string
		mutate func(m *manifests)
		want   string
	}{
		{"a flag the binary does not define", func(m *manifests) {
			c := tmpl(m, "bump-tag", "bump-tag").Container
			c.Args = append(c.Args, "--allow-downgrades=true")
		}, "bump-tag/bump-tag: passes --allow-downgrades, which bump-tag does not define"},
		{"another binary's flag", func(m *manifests) {
			c := tmpl(m, "notify", "notify").Container
			c.Args = append(c.Args, "--deadline=5m")
		}, "notify/notify: passes --deadline, which notify does not define"},
		{"a variable the binary does not read", func(m *manifests) {
			c := tmpl(m, "migrate", "migrate").Container
			c.Env[0].Name = "SLIPWAY_DATABASE"
		}, "migrate/migrate: sets SLIPWAY_DATABASE, which migrate does not read"},
		{"an output the binary does not write", func(m *manifests) {
			tmpl(m, "precompile-assets", "precompile-assets").Outputs.Parameters[1].ValueFrom.Path = "/slipway/outputs/files"
		}, `reads output "files", which precompile-assets does not write`},
		{"an output outside the outputs folder", func(m *manifests) {
			tmpl(m, "post-sync", "smoke-test").Outputs.Parameters[0].ValueFrom.Path = "/tmp/outcome"
		}, "post-sync/smoke-test: reads output /tmp/outcome outside --outputs-dir /slipway/outputs"},
		{"a copied binary the main container does not run", func(m *manifests) {
			tmpl(m, "migrate", "migrate").InitContainers[0].Command[1] = "/usr/local/bin/smoke-test"
		}, "migrate/migrate: runs /slipway/bin/migrate, but no init container runs"},
		{"a binary the image does not have", func(m *manifests) {
			tmpl(m, "notify", "notify").Container.Command = []string{"/usr/local/bin/slack-notify"}
		}, "runs /usr/local/bin/slack-notify, which is no Slipway binary"},
		{"an output the plugin does not reply with", func(m *manifests) {
			p := &tmpl(m, "post-sync", "promote").Outputs
			p.Parameters = append(p.Parameters, wfv1.Parameter{Name: "commit-url", ValueFrom: &wfv1.ValueFrom{Supplied: &wfv1.SuppliedValueFrom{}}})
		}, "post-sync/promote: outputs [promoted target-env commit reason outcome commit-url], but the promoter replies with"},
		{"a flag the command does not define", func(m *manifests) {
			c := tmpl(m, "promoter-plan", "plan").Container
			c.Args = append(c.Args, "--format=markdown")
		}, "promoter-plan/plan: passes --format, which promoter plan does not define"},
		{"the server's flag on a command", func(m *manifests) {
			c := tmpl(m, "promoter-plan", "plan").Container
			c.Args = append(c.Args, "--addr=:4355")
		}, "promoter-plan/plan: passes --addr, which promoter plan does not define"},
		{"a command the binary does not have", func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").Container.Args[0] = "plans"
		}, "promoter-plan/plan: runs `promoter plans`, a command promoter does not have"},
		{"a variable the command does not read", func(m *manifests) {
			c := tmpl(m, "promoter-plan", "plan").Container
			c.Env[2].Name = "SLIPWAY_APPS"
		}, "promoter-plan/plan: sets SLIPWAY_APPS, which promoter plan does not read"},
		{"an output read from another file than the command writes", func(m *manifests) {
			tmpl(m, "promoter-plan", "plan").Outputs.Parameters[0].ValueFrom.Path = "/slipway/report/plan.markdown"
		}, "promoter-plan/plan: reads output /slipway/report/plan.markdown but gives promoter plan no --outputs-dir"},
		{"a report flag notify does not define", func(m *manifests) {
			c := tmpl(m, "notify", "report").Container
			c.Args = append(c.Args, "--report-format=base64")
		}, "notify/report: passes --report-format, which notify does not define"},
		{"a plugin step the promoter does not take", func(m *manifests) {
			tmpl(m, "post-sync", "promote").Plugin = &wfv1.Plugin{Object: wfv1.Object{Value: []byte(`{"promoter":{"promote":{"app":"x","to":"y"}}}`)}}
		}, "post-sync/promote: the promoter does not take this plugin step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t).deepCopy()
			tc.mutate(m)
			assert.Contains(t, strings.Join(contractProblems(m, bins), "\n"), tc.want)
		})
	}
}
