package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argoscheme "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
)

// decoder reads Kubernetes' and Argo's kinds into their Go types, refusing
// unknown fields (a typo in a manifest fails the test, as kubectl would).
var decoder = func() k8sruntime.Decoder {
	s := k8sruntime.NewScheme()
	if err := errors.Join(kubescheme.AddToScheme(s), argoscheme.AddToScheme(s)); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// Apply creates every object of the YAML files (documents separated by
// ---) in the namespace, in order.
func (a *Argo) Apply(t testing.TB, files ...string) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.applyYAML(b); err != nil {
			t.Fatalf("apply %s: %v", f, err)
		}
	}
}

func (a *Argo) applyYAML(b []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return err
		}
		if err := a.create(obj); err != nil {
			return fmt.Errorf("create %s: %w", gvk.Kind, err)
		}
	}
}

func (a *Argo) create(obj k8sruntime.Object) error {
	ctx, ns, opts := context.Background(), a.Namespace, metav1.CreateOptions{}
	var err error
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		_, err = a.Kube.CoreV1().ConfigMaps(ns).Create(ctx, o, opts)
	case *corev1.Secret:
		_, err = a.Kube.CoreV1().Secrets(ns).Create(ctx, o, opts)
	case *corev1.ServiceAccount:
		_, err = a.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, o, opts)
	case *rbacv1.Role:
		_, err = a.Kube.RbacV1().Roles(ns).Create(ctx, o, opts)
	case *rbacv1.RoleBinding:
		_, err = a.Kube.RbacV1().RoleBindings(ns).Create(ctx, o, opts)
	case *wfv1.WorkflowTemplate:
		_, err = a.Argo.ArgoprojV1alpha1().WorkflowTemplates(ns).Create(ctx, o, opts)
	case *wfv1.CronWorkflow:
		_, err = a.Argo.ArgoprojV1alpha1().CronWorkflows(ns).Create(ctx, o, opts)
	default:
		return fmt.Errorf("kind %T is not supported by the harness", obj)
	}
	return err
}
