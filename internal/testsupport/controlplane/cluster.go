package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipway-deploy/slipway/internal/testsupport/serverproc"
)

// startTimeout bounds etcd's and the apiserver's start (/readyz answers in
// about 2.5 s on 2 cores).
const startTimeout = time.Minute

// Cluster is etcd and kube-apiserver on loopback, with token auth and RBAC.
// Nothing runs pods: there is no scheduler, kubelet or controller-manager.
type Cluster struct {
	// Kube is a client with the admin token (system:masters).
	Kube kubernetes.Interface
	// Config is the admin client configuration.
	Config *rest.Config
	// Kubeconfig is a file holding Config, for the processes started here.
	Kubeconfig string
	// Host and Port are where the apiserver serves HTTPS.
	Host string
	Port int
	// CAData is the PEM of the CA that signed the apiserver's certificate.
	CAData []byte
	bin    string // the binaries' folder
	dir    string // scratch: data, logs, certificates
}

// StartCluster starts etcd and kube-apiserver and waits for /readyz; both
// are stopped when t ends, the apiserver first (stopped after its etcd it
// hangs on SIGTERM for 30 s or more).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{bin: binDir(t), dir: t.TempDir(), Host: "127.0.0.1"}
	ports := freePorts(t, 3)
	etcdClient, etcdPeer := ports[0], ports[1]
	c.Port = ports[2]
	token := randomHex(t, 24)
	tokens := filepath.Join(c.dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		t.Fatalf("write token file: %v", err)
	}
	p, err := writePKI(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	c.CAData = p.caPEM
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	clientURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcd := c.start(t, "etcd",
		"--name=test", // etcd warns about the default name
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=test="+peerURL,
		// The data is thrown away afterwards: no need to wait for the disk.
		"--unsafe-no-fsync",
	)
	if err := etcd.WaitOK(ctx, &http.Client{Timeout: 2 * time.Second}, clientURL+"/health", nil); err != nil {
		t.Fatal(err)
	}

	api := c.start(t, "kube-apiserver",
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(c.Port),
		// The default endpoint reconciler refuses a loopback advertise address.
		"--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
		"--tls-cert-file="+p.servingCert, "--tls-private-key-file="+p.servingKey,
		"--cert-dir="+filepath.Join(c.dir, "certs"),
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.saPublicKey,
		"--service-account-signing-key-file="+p.saPrivateKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
	)
	c.Config = &rest.Config{
		Host:            "https://" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		// The tests make bursts of requests; the defaults (5 qps) slow them.
		QPS: 100, Burst: 200,
	}
	httpClient, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		t.Fatalf("apiserver client: %v", err)
	}
	httpClient.Timeout = 2 * time.Second
	if err := api.WaitOK(ctx, httpClient, c.Config.Host+"/readyz", nil); err != nil {
		t.Fatal(err)
	}
	if c.Kube, err = kubernetes.NewForConfig(c.Config); err != nil {
		t.Fatalf("apiserver client: %v", err)
	}
	c.Kubeconfig = c.writeKubeconfig(t, "admin", token, "")
	return c
}

func (c *Cluster) start(t testing.TB, name string, args ...string) *serverproc.Process {
	t.Helper()
	return serverproc.Start(t, serverproc.Spec{Name: name, Path: filepath.Join(c.bin, name), Args: args, LogDir: c.dir})
}

// writeKubeconfig writes a kubeconfig for user (authenticated by token)
// whose default namespace is ns, and returns its path.
func (c *Cluster) writeKubeconfig(t testing.TB, user, token, ns string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: user, Namespace: ns}
	cfg.CurrentContext = "test"
	path := filepath.Join(c.dir, user+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return path
}

// CreateNamespace creates namespace ns.
func (c *Cluster) CreateNamespace(t testing.TB, ns string) {
	t.Helper()
	_, err := c.Kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
}

// freePorts reserves n loopback ports at once (so they differ) and releases
// them for the children.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random token: %v", err)
	}
	return hex.EncodeToString(b)
}
