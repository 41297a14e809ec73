package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionsql/sessionsql/server"
)

// writePEM writes a self-signed certificate and its key as PEM files in
// dir and returns their paths.
func writePEM(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestSecurityFlags parses the wire listener's security flags and loads
// what they name, as serve does at startup. (startServe cannot pass flags,
// so the connections themselves are tested in the server package.)
func TestSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePEM(t, dir)
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := file("users", "# operators\nalice:a-secret\nbob:b:secret\n")
	badUsers := file("bad-users", "alice:a-secret\n\nbob\n")
	emptyUsers := file("empty-users", "# nobody yet\n")

	tests := []struct {
		name      string
		args      []string
		password  string // $SESSIONSQL_PASSWORD
		wantErr   string
		wantTLS   bool
		wantUsers int // -1: no credentials (trust)
	}{
		{"defaults", nil, "", "", false, -1},
		{"tls", []string{"--tls-cert", cert, "--tls-key", key}, "", "", true, -1},
		{"tls and require", []string{"--tls-cert", cert, "--tls-key", key, "--require-tls"}, "", "", true, -1},
		{"cert without key", []string{"--tls-cert", cert}, "", "give both or neither", false, 0},
		{"key without cert", []string{"--tls-key", key}, "", "give both or neither", false, 0},
		{"require without tls", []string{"--require-tls"}, "", "--require-tls needs", false, 0},
		{"key is not a key", []string{"--tls-cert", cert, "--tls-key", cert}, "", "--tls-cert/--tls-key", false, 0},
		{"users file", []string{"--users-file", users}, "", "", false, 2},
		{"users file and user", []string{"--users-file", users, "--user", "carol"}, "c-secret", "", false, 3},
		{"user", []string{"--user", "carol"}, "c-secret", "", false, 1},
		{"user without password", []string{"--user", "carol"}, "", "$SESSIONSQL_PASSWORD is empty or unset", false, 0},
		{"user twice", []string{"--users-file", users, "--user", "alice"}, "x", "also in --users-file", false, 0},
		{"bad users file", []string{"--users-file", badUsers}, "", "bad-users: line 3: want user:password", false, 0},
		{"empty users file", []string{"--users-file", emptyUsers}, "", "lists no users", false, 0},
		{"missing users file", []string{"--users-file", filepath.Join(dir, "nope")}, "", "no such file", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(passwordEnv, tc.password)
			c, err := parseServeFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tlsCfg, creds, err := c.securityConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, pw := range []string{"a-secret", "b:secret", "c-secret"} {
					if strings.Contains(err.Error(), pw) {
						t.Errorf("error %q quotes a password", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tlsCfg != nil) != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", tlsCfg != nil, tc.wantTLS)
			}
			switch {
			case tc.wantUsers < 0 && creds != nil:
				t.Errorf("credentials for %d users, want none", creds.Len())
			case tc.wantUsers >= 0 && (creds == nil || creds.Len() != tc.wantUsers):
				t.Errorf("credentials %v, want %d users", creds, tc.wantUsers)
			}
		})
	}
}

func TestLimitFlags(t *testing.T) {
	tests := []struct {
		args           []string
		conns, stmtLen int
		wantErr        string
	}{
		{nil, server.DefaultMaxConns, server.DefaultMaxStatementBytes, ""},
		{[]string{"--max-connections", "7", "--max-statement-bytes", "4096"}, 7, 4096, ""},
		{[]string{"--max-connections", "0"}, 0, 0, "--max-connections must be at least 1"},
		{[]string{"--max-statement-bytes", "-1"}, 0, 0, "--max-statement-bytes must be at least 1"},
	}
	for _, tc := range tests {
		c, err := parseServeFlags(tc.args, io.Discard)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err = %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.maxConns != tc.conns || c.maxStatementBytes != tc.stmtLen {
			t.Errorf("%v: %d connections, %d bytes, %v", tc.args, c.maxConns, c.maxStatementBytes, err)
		}
	}
}
