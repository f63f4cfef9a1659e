package controlplane_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/slipway-deploy/slipway/internal/testsupport/controlplane"
)

// The apiserver serves the version hack/controlplane.sh builds, over TLS
// with the CA made here, and lets in the admin token only.
func TestClusterServesWithTokenAuth(t *testing.T) {
	c := controlplane.StartCluster(t)
	v, err := c.Kube.Discovery().ServerVersion()
	require.NoError(t, err)
	assert.Equal(t, "v1.37.2", v.GitVersion, "the version hack/controlplane.sh stamps")

	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		token string
		check func(error) bool
	}{
		{"admin token", c.Config.BearerToken, func(err error) bool { return err == nil }},
		{"wrong token", "not-" + c.Config.BearerToken, apierrors.IsUnauthorized},
		{"no token", "", apierrors.IsForbidden}, // anonymous: authenticated as nobody, then refused by RBAC
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rest.CopyConfig(c.Config)
			cfg.BearerToken = tc.token
			client, err := kubernetes.NewForConfig(cfg)
			require.NoError(t, err)
			_, err = client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
			assert.True(t, tc.check(err), "GET namespace default: %v", err)
		})
	}
}
