package database_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/database"
)

// TestMySQLTLS proves TLS to MariaDB from the URL alone. The machine's
// MariaDB has TLS disabled, so the test starts a MariaDB of its own on a
// loopback port, with a server certificate signed by a CA it makes.
func TestMySQLTLS(t *testing.T) {
	mariadbd, install := "/usr/sbin/mariadbd", "mariadb-install-db"
	if _, err := os.Stat(mariadbd); err != nil {
		t.Skip("mariadbd not installed (hack/services.sh installs it)")
	}
	if _, err := exec.LookPath(install); err != nil {
		t.Skip("mariadb-install-db not installed (hack/services.sh installs it)")
	}
	dir := t.TempDir()
	caPEM, otherCA := writeCerts(t, dir)
	port := startMariaDB(t, mariadbd, install, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := fmt.Sprintf("mysql://root@127.0.0.1:%d/mysql", port)
	cipher := func(raw string) (string, error) {
		tg, err := database.Parse(raw)
		require.NoError(t, err)
		db, err := tg.Open()
		require.NoError(t, err)
		defer db.Close()
		var name, value string
		err = db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &value)
		return value, err
	}
	for _, tc := range []struct {
		name      string
		query     string
		encrypted bool
		wantErr   string
	}{
		{"no TLS asked for", "", false, ""},
		{"verified against our CA (tls-ca)", "?tls-ca=" + caPEM, true, ""},
		{"skip-verify", "?tls=skip-verify", true, ""},
		{"preferred", "?tls=preferred", true, ""},
		{"verified against the system's CAs: refused", "?tls=true", false, "certificate signed by unknown authority"},
		{"verified against another CA: refused", "?tls-ca=" + otherCA, false, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cipher(base + tc.query)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.encrypted, got != "", "Ssl_cipher %q", got)
		})
	}
}

// writeCerts writes a CA, a server certificate for 127.0.0.1 signed by it
// and its key into dir, and a second, unrelated CA; it returns the two CA
// files.
func writeCerts(t *testing.T, dir string) (ca, other string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
		key := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert, key, writePEM(name+".pem", "CERTIFICATE", der)
	}
	caCert, caKey, ca := newCA("slipway-test-ca")
	_, _, other = newCA("slipway-other-ca")
	key := newKey()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano() + 1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	writePEM("server.pem", "CERTIFICATE", der)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	writePEM("server-key.pem", "EC PRIVATE KEY", kder)
	return ca, other
}

// startMariaDB initialises a data folder in dir and starts a MariaDB with
// TLS on a free loopback port, stopped when the test ends.
func startMariaDB(t *testing.T, mariadbd, install, dir string) int {
	t.Helper()
	u, err := user.Current()
	require.NoError(t, err)
	data := filepath.Join(dir, "data")
	out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--user="+u.Username,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	require.NoError(t, err, "%s", out)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	cmd := exec.Command(mariadbd, "--no-defaults", "--datadir="+data, "--user="+u.Username,
		"--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--socket="+filepath.Join(dir, "sock"),
		"--pid-file="+filepath.Join(dir, "pid"), "--log-error="+filepath.Join(dir, "error.log"),
		"--skip-log-bin", "--innodb-buffer-pool-size=8M",
		"--ssl-cert="+filepath.Join(dir, "server.pem"), "--ssl-key="+filepath.Join(dir, "server-key.pem"))
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	up := func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	for deadline := time.Now().Add(60 * time.Second); !up(); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("mariadbd exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("mariadbd did not listen within 60s")
		}
	}
	return port
}
