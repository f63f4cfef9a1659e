// Package sshkey writes a fresh SSH key pair for tests of SSH remotes: the
// private key file and a known_hosts file that trusts it for one host.
package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// Files writes a new ed25519 private key and a known_hosts file listing its
// public key for host, in a temporary folder, and returns their paths.
func Files(t testing.TB, host string) (key, knownHosts string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	dir := t.TempDir()
	key = filepath.Join(dir, "id_ed25519")
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(block), 0o600))
	knownHosts = filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte(host+" "+string(ssh.MarshalAuthorizedKey(sshPub))), 0o600))
	return key, knownHosts
}
