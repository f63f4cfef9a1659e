package localargo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apiv1 "k8s.io/api/core/v1"
)

// Image is where an image's files are on this machine.
type Image struct {
	// WorkDir is where its containers start (the image's WORKDIR).
	WorkDir string
	// Paths maps folders of the image to local folders, e.g.
	// /usr/local/bin to bin/.
	Paths map[string]string
}

// stopGrace is how long a container has after SIGTERM (the context ended)
// before its process group is killed.
const stopGrace = 10 * time.Second

// pod runs a container template: its volumes as folders of the pod's
// folder, its init containers, then its container; its outputs are read
// from the files the container wrote (valueFrom.path).
func (w *walk) pod(ctx context.Context, wt *wfv1.WorkflowTemplate, t *wfv1.Template, name string) (Node, error) {
	n := Node{Workflow: w.wf.Name, Name: name, Template: t.Name, Started: time.Now(), Outputs: map[string]string{}}
	n.Pod = filepath.Join(w.c.Dir, fmt.Sprintf("%03d-%s-%s", w.c.pods.Add(1), w.wf.Name, name))
	volumes, err := w.volumes(n.Pod, t.Volumes)
	if err != nil {
		return n, fmt.Errorf("%s/%s: the pod would not start: %w", wt.Name, t.Name, err)
	}
	containers := []apiv1.Container{}
	for _, c := range t.InitContainers {
		containers = append(containers, c.Container)
	}
	containers = append(containers, *t.Container)
	for i, ctr := range containers {
		if ctr.Name == "" {
			ctr.Name = "main"
		}
		n.Log = filepath.Join(n.Pod, ctr.Name+".log")
		mounts, err := w.mounts(ctr, volumes)
		if err != nil {
			return n, fmt.Errorf("%s/%s: %w", wt.Name, t.Name, err)
		}
		extra := []string(nil)
		if i == len(containers)-1 {
			extra = w.c.ExtraArgs[wt.Name]
		}
		n.Args, n.ExitCode, err = w.exec(ctx, ctr, mounts, extra, n.Log)
		if err != nil {
			return n, fmt.Errorf("%s/%s: %w", wt.Name, t.Name, err)
		}
		if n.ExitCode != 0 {
			break
		}
		if i == len(containers)-1 {
			if err := w.outputs(&n, t.Outputs.Parameters, mounts); err != nil {
				return n, fmt.Errorf("%s/%s: %w", wt.Name, t.Name, err)
			}
		}
	}
	n.Finished, n.Phase = time.Now(), wfv1.NodeSucceeded
	if n.ExitCode != 0 {
		n.Phase, n.Message = wfv1.NodeFailed, fmt.Sprintf("Error (exit code %d)", n.ExitCode)
	}
	return n, nil
}

// volumes makes the pod's volumes: an emptyDir is an empty folder, a
// Secret or ConfigMap a folder holding its items.
func (w *walk) volumes(pod string, vols []apiv1.Volume) (map[string]string, error) {
	dirs := map[string]string{}
	for _, v := range vols {
		dir := filepath.Join(pod, "volumes", v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		dirs[v.Name] = dir
		var data map[string]string
		var items []apiv1.KeyToPath
		var source string
		switch {
		case v.EmptyDir != nil:
			continue
		case v.Secret != nil:
			source, items = "Secret "+v.Secret.SecretName, v.Secret.Items
			var ok bool
			if data, ok = w.c.Secrets[v.Secret.SecretName]; !ok && (v.Secret.Optional == nil || !*v.Secret.Optional) {
				return nil, fmt.Errorf("volume %s: no %s", v.Name, source)
			}
		case v.ConfigMap != nil:
			source, items = "ConfigMap "+v.ConfigMap.Name, v.ConfigMap.Items
			var ok bool
			if data, ok = w.c.ConfigMaps[v.ConfigMap.Name]; !ok && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
				return nil, fmt.Errorf("volume %s: no %s", v.Name, source)
			}
		default:
			return nil, fmt.Errorf("volume %s: a kind this machine does not make", v.Name)
		}
		if data == nil {
			continue // optional and absent: an empty folder
		}
		if len(items) == 0 {
			for k := range data {
				items = append(items, apiv1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			value, ok := data[it.Key]
			if !ok {
				return nil, fmt.Errorf("volume %s: %s has no key %s", v.Name, source, it.Key)
			}
			if err := os.WriteFile(filepath.Join(dir, it.Path), []byte(value), 0o600); err != nil {
				return nil, err
			}
		}
	}
	return dirs, nil
}

// mounts is a container's view of paths: its image's folders and its
// volume mounts, each an absolute path in the container mapped to a local
// folder.
func (w *walk) mounts(ctr apiv1.Container, volumes map[string]string) (*pathMap, error) {
	img, err := w.c.Images(ctr.Image)
	if err != nil {
		return nil, fmt.Errorf("container %s: image %s: %w", ctr.Name, ctr.Image, err)
	}
	m := &pathMap{workDir: img.WorkDir, to: map[string]string{}}
	for p, local := range img.Paths {
		m.to[p] = local
	}
	for _, vm := range ctr.VolumeMounts {
		dir, ok := volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("container %s mounts %s, which the pod does not have", ctr.Name, vm.Name)
		}
		m.to[vm.MountPath] = dir
	}
	return m, nil
}

// pathMap translates a container's absolute paths to local ones.
type pathMap struct {
	workDir string
	to      map[string]string
}

// local translates path by its longest mapped prefix; a path nothing maps
// (or a relative one) is left as it is.
func (m *pathMap) local(path string) string {
	best := ""
	for p := range m.to {
		if (path == p || strings.HasPrefix(path, p+"/")) && len(p) > len(best) {
			best = p
		}
	}
	if best == "" {
		return path
	}
	return m.to[best] + strings.TrimPrefix(path, best)
}

// arg translates an argument, or the value of a --flag=value argument.
func (m *pathMap) arg(a string) string {
	if name, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "-") {
		return name + "=" + m.local(value)
	}
	return m.local(a)
}

// exec runs one container as a process group of its own, stopped
// (SIGTERM, then SIGKILL) when ctx ends and killed if this program dies. It
// returns the command line it ran and the exit code; the error is this
// machine's.
func (w *walk) exec(ctx context.Context, ctr apiv1.Container, m *pathMap, extra []string, logPath string) ([]string, int, error) {
	argv := slices.Concat(ctr.Command, ctr.Args)
	if len(argv) == 0 {
		return nil, 0, fmt.Errorf("container %s: no command", ctr.Name)
	}
	if len(extra) > 0 {
		at := slices.Index(argv, "--")
		if at < 0 {
			at = len(argv)
		}
		argv = slices.Insert(argv, at, extra...)
	}
	for i := range argv {
		argv[i] = m.arg(argv[i])
	}
	if _, err := os.Stat(argv[0]); err != nil {
		return argv, 0, fmt.Errorf("container %s: %s is not in image %s", ctr.Name, ctr.Command[0], ctr.Image)
	}
	env, err := w.env(ctr, m)
	if err != nil {
		return argv, 0, err
	}
	log, err := os.Create(logPath)
	if err != nil {
		return argv, 0, err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = m.workDir, env, log, log
	if ctr.WorkingDir != "" {
		cmd.Dir = m.local(ctr.WorkingDir)
	}
	cmd.SysProcAttr = procAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	err = cmd.Run()
	if ctx.Err() != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything of its group left behind
		return argv, 0, fmt.Errorf("container %s: %w", ctr.Name, context.Cause(ctx))
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return argv, exit.ExitCode(), nil
	case err != nil:
		return argv, 0, fmt.Errorf("container %s: %w", ctr.Name, err)
	}
	return argv, 0, nil
}

// env is a container's environment: the cluster's, then the container's
// values (paths translated) and Secrets' keys.
func (w *walk) env(ctr apiv1.Container, m *pathMap) ([]string, error) {
	env := slices.Clone(w.c.Env)
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+m.local(e.Value))
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := w.c.Secrets[ref.Name][ref.Key]
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				return nil, fmt.Errorf("container %s: env %s: no key %s in Secret %s (the pod would not start)", ctr.Name, e.Name, ref.Key, ref.Name)
			}
			if ok {
				env = append(env, e.Name+"="+v)
			}
		default:
			return nil, fmt.Errorf("container %s: env %s: a source this machine does not read", ctr.Name, e.Name)
		}
	}
	return env, nil
}

// outputs reads a container's output parameters from the files it wrote,
// with their defaults when it wrote none.
func (w *walk) outputs(n *Node, params []wfv1.Parameter, m *pathMap) error {
	for _, p := range params {
		if p.ValueFrom == nil || p.ValueFrom.Path == "" {
			return fmt.Errorf("output %s: a container's outputs must come from a path here", p.Name)
		}
		b, err := os.ReadFile(m.local(p.ValueFrom.Path))
		switch {
		case err == nil:
			n.Outputs[p.Name] = string(b)
		case errors.Is(err, os.ErrNotExist) && p.ValueFrom.Default != nil:
			n.Outputs[p.Name] = p.ValueFrom.Default.String()
		default:
			return fmt.Errorf("output %s: %w", p.Name, err)
		}
		w.setGlobal(p, n.Outputs[p.Name])
	}
	return nil
}
