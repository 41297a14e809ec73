package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// lockedBuffer collects a server's log for inspection.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testCertificate returns a fresh self-signed ECDSA certificate for
// 127.0.0.1 and localhost, and a pool that trusts it.
func testCertificate(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sessionsql test"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func testTLSConfig(t testing.TB) *tls.Config {
	cert, _ := testCertificate(t)
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func mustCredentials(t testing.TB, users map[string]string) *Credentials {
	t.Helper()
	c, err := NewCredentials(users)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dial connects with pgx as user/password with the given sslmode.
func (ts *testServer) dial(t testing.TB, user, password, sslmode string, edit func(*pgx.ConnConfig)) (*pgx.Conn, error) {
	t.Helper()
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: ts.addr, Path: "/testdb",
		RawQuery: "sslmode=" + sslmode + "&connect_timeout=10"}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	conn, err := pgx.ConnectConfig(testCtx(t), cfg)
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

// selectOne runs SELECT 1 on conn and checks the answer.
func selectOne(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	var n int64
	if err := conn.QueryRow(testCtx(t), "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT 1 = %d, %v", n, err)
	}
}

func TestParseUsers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"empty", "", map[string]string{}, ""},
		{"users", "# comment\n\nalice:secret\r\n  # indented comment\nbob:pa:ss word \n",
			map[string]string{"alice": "secret", "bob": "pa:ss word "}, ""},
		{"no colon", "alice:x\nbobsecret\n", nil, "line 2: want user:password"},
		{"empty name", "\n:secret\n", nil, "line 2: empty user name"},
		{"blank around name", " alice:secret\n", nil, "line 1: empty user name or blanks"},
		{"empty password", "# c\nalice:\n", nil, `line 2: user "alice" has an empty password`},
		{"twice", "alice:one\nalice:two\n", nil, `line 2: user "alice" listed twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUsers(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, pw := range []string{"secret", "bobsecret", "one", "two"} {
					if strings.Contains(err.Error(), pw) {
						t.Errorf("error %q quotes a password", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// scramExchange runs a SCRAM-SHA-256 conversation between xdg-go's client
// with password and the verifier creds hold for user, and reports whether
// the server accepted the proof.
func scramExchange(t *testing.T, creds *Credentials, user, password string) bool {
	t.Helper()
	sc, _ := creds.lookup(user)
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return sc, nil })
	if err != nil {
		t.Fatal(err)
	}
	client, err := scram.SHA256.NewClientUnprepped("", password, "")
	if err != nil {
		t.Fatal(err)
	}
	cc, sconv := client.NewConversation(), srv.NewConversation()
	msg, err := cc.Step("")
	for err == nil && !sconv.Done() {
		if msg, err = sconv.Step(msg); err != nil {
			break
		}
		msg, err = cc.Step(msg)
	}
	return sconv.Valid()
}

func TestNewCredentials(t *testing.T) {
	for _, users := range []map[string]string{{"": "x"}, {"alice": ""}} {
		if _, err := NewCredentials(users); err == nil {
			t.Errorf("NewCredentials(%q) succeeded", users)
		}
	}
	creds := mustCredentials(t, map[string]string{"alice": "secret", "bob": "secret"})
	a, okA := creds.lookup("alice")
	b, okB := creds.lookup("bob")
	if !okA || !okB || creds.Len() != 2 {
		t.Fatalf("lookup: %v %v, Len %d", okA, okB, creds.Len())
	}
	if a.Iters != scramIterations || len(a.Salt) != scramSaltBytes {
		t.Errorf("key factors %d iterations, %d bytes of salt", a.Iters, len(a.Salt))
	}
	if a.Salt == b.Salt || bytes.Equal(a.StoredKey, b.StoredKey) {
		t.Error("two users with the same password share a salt or a verifier")
	}
	if bytes.Contains(a.StoredKey, []byte("secret")) || bytes.Contains(a.ServerKey, []byte("secret")) {
		t.Error("the verifier contains the password")
	}
	m1, ok1 := creds.lookup("mallory")
	m2, _ := creds.lookup("mallory")
	m3, _ := creds.lookup("eve")
	if ok1 || m1.Salt != m2.Salt || m1.Salt == m3.Salt || m1.Iters != scramIterations {
		t.Errorf("mock salts: known %v, stable %v, distinct %v", ok1, m1.Salt == m2.Salt, m1.Salt != m3.Salt)
	}

	tests := []struct {
		user, password string
		want           bool
	}{
		{"alice", "secret", true},
		{"alice", "Secret", false},
		{"alice", "", false},
		{"mallory", "secret", false},
	}
	for _, tc := range tests {
		if got := scramExchange(t, creds, tc.user, tc.password); got != tc.want {
			t.Errorf("%s with %q: valid = %v, want %v", tc.user, tc.password, got, tc.want)
		}
	}
}

// TestSCRAM authenticates real pgx clients over TCP.
func TestSCRAM(t *testing.T) {
	logs := &lockedBuffer{}
	ts := startServer(t, Config{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Credentials: mustCredentials(t, map[string]string{
			"alice": "s3cret-pw",
			// SASLprep maps U+00A0 to a space, as pgx and libpq do.
			"nbsp": "pass\u00a0phrase",
			// SASLprep rejects unassigned code points: the raw bytes are used.
			"emoji": "key🔑word",
		}),
	})
	tests := []struct {
		name, user, password string
		wantCode             string
	}{
		{"right password", "alice", "s3cret-pw", ""},
		{"normalized password", "nbsp", "pass phrase", ""},
		{"raw password", "emoji", "key🔑word", ""},
		{"wrong password", "alice", "wrong-pw", pgerrcode.InvalidPassword},
		{"empty password", "alice", "", pgerrcode.InvalidPassword},
		{"unknown user", "mallory", "s3cret-pw", pgerrcode.InvalidPassword},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.eng.sessions.Load()
			conn, err := ts.dial(t, tc.user, tc.password, "disable", nil)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				selectOne(t, conn)
				ts.eng.mu.Lock()
				defer ts.eng.mu.Unlock()
				if ts.eng.last != (testSessionInfo{tc.user, "testdb"}) {
					t.Errorf("session for %+v", ts.eng.last)
				}
				return
			}
			if err == nil {
				t.Fatal("connected, want an error")
			}
			pe := pgErr(t, err)
			want := fmt.Sprintf("password authentication failed for user %q", tc.user)
			if pe.Code != tc.wantCode || pe.Severity != "FATAL" || pe.Message != want {
				t.Errorf("got %s %s %q, want FATAL %s %q", pe.Severity, pe.Code, pe.Message, tc.wantCode, want)
			}
			if n := ts.eng.sessions.Load(); n != before {
				t.Errorf("a failed login opened a session")
			}
		})
	}
	out := logs.String()
	if !strings.Contains(out, "password authentication failed") {
		t.Errorf("failures were not logged:\n%s", out)
	}
	for _, pw := range []string{"s3cret-pw", "wrong-pw", "phrase", "🔑"} {
		if strings.Contains(out, pw) {
			t.Errorf("the log contains the password %q", pw)
		}
	}
}

// startupRaw opens a raw connection and sends a StartupMessage for user.
func startupRaw(t *testing.T, addr, user string) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": user}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	return fe, c
}

func receive[M pgproto3.BackendMessage](t *testing.T, fe *pgproto3.Frontend) M {
	t.Helper()
	msg, err := fe.Receive()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	m, ok := msg.(M)
	if !ok {
		t.Fatalf("got %#v, want %T", msg, m)
	}
	return m
}

// serverFirstSalt starts a SCRAM exchange as user and returns the salt of
// the server-first-message.
func serverFirstSalt(t *testing.T, addr, user string) string {
	t.Helper()
	fe, _ := startupRaw(t, addr, user)
	sasl := receive[*pgproto3.AuthenticationSASL](t, fe)
	if fmt.Sprint(sasl.AuthMechanisms) != "[SCRAM-SHA-256]" {
		t.Fatalf("mechanisms %v", sasl.AuthMechanisms)
	}
	fe.Send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=clientnonce")})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	cont := receive[*pgproto3.AuthenticationSASLContinue](t, fe)
	var salt string
	for _, f := range strings.Split(string(cont.Data), ",") {
		if s, ok := strings.CutPrefix(f, "s="); ok {
			salt = s
		}
	}
	if !strings.HasPrefix(string(cont.Data), "r=clientnonce") || !strings.HasSuffix(string(cont.Data), ",i=4096") || salt == "" {
		t.Fatalf("server-first-message %q", cont.Data)
	}
	b, err := base64.StdEncoding.DecodeString(salt)
	if err != nil || len(b) != scramSaltBytes {
		t.Fatalf("salt %q: %v", salt, err)
	}
	return salt
}

// TestSCRAMProtocol drives the exchange by hand: an unknown user sees the
// same kind of exchange as a real one, with a salt stable per name, and a
// malformed exchange is a protocol violation.
func TestSCRAMProtocol(t *testing.T) {
	ts := startServer(t, Config{Credentials: mustCredentials(t, map[string]string{"alice": "pw"})})

	if a, b := serverFirstSalt(t, ts.addr, "nobody"), serverFirstSalt(t, ts.addr, "nobody"); a != b {
		t.Errorf("unknown user's salt changes: %s, %s", a, b)
	}
	if a, b := serverFirstSalt(t, ts.addr, "alice"), serverFirstSalt(t, ts.addr, "nobody"); a == b {
		t.Errorf("unknown user got alice's salt")
	}

	tests := []struct {
		name string
		send pgproto3.FrontendMessage
		code string
	}{
		{"wrong mechanism", &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256-PLUS", Data: []byte("p=tls-server-end-point,,n=,r=x")}, pgerrcode.ProtocolViolation},
		{"malformed first message", &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("garbage")}, pgerrcode.ProtocolViolation},
		{"not a SASL message", &pgproto3.Query{String: "SELECT 1"}, pgerrcode.ProtocolViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe, _ := startupRaw(t, ts.addr, "alice")
			receive[*pgproto3.AuthenticationSASL](t, fe)
			fe.Send(tc.send)
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			e := receive[*pgproto3.ErrorResponse](t, fe)
			if e.Code != tc.code || e.Severity != "FATAL" {
				t.Errorf("got %s %s %q, want FATAL %s", e.Severity, e.Code, e.Message, tc.code)
			}
		})
	}

	t.Run("bad proof", func(t *testing.T) {
		fe, _ := startupRaw(t, ts.addr, "alice")
		receive[*pgproto3.AuthenticationSASL](t, fe)
		fe.Send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=abc")})
		_ = fe.Flush()
		cont := receive[*pgproto3.AuthenticationSASLContinue](t, fe)
		nonce, _, _ := strings.Cut(string(cont.Data), ",")
		proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
		fe.Send(&pgproto3.SASLResponse{Data: []byte("c=biws," + nonce + ",p=" + proof)})
		_ = fe.Flush()
		e := receive[*pgproto3.ErrorResponse](t, fe)
		if e.Code != pgerrcode.InvalidPassword || e.Message != `password authentication failed for user "alice"` {
			t.Errorf("got %s %q", e.Code, e.Message)
		}
	})
}

// TestTLS connects pgx clients with and without TLS to servers with and
// without it.
func TestTLS(t *testing.T) {
	cert, pool := testCertificate(t)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	plain := startServer(t, Config{})
	withTLS := startServer(t, Config{TLS: tlsCfg})
	required := startServer(t, Config{TLS: tlsCfg, RequireTLS: true})
	authTLS := startServer(t, Config{TLS: tlsCfg, RequireTLS: true, Credentials: mustCredentials(t, map[string]string{"alice": "pw"})})
	verify := func(cfg *pgx.ConnConfig) {
		cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "localhost"}
		cfg.Fallbacks = nil
	}

	tests := []struct {
		name     string
		ts       *testServer
		user, pw string
		sslmode  string
		edit     func(*pgx.ConnConfig)
		wantTLS  bool
		wantErr  string // a substring of the error; "" means success
	}{
		{"require", withTLS, "tester", "", "require", nil, true, ""},
		{"verify the certificate", withTLS, "tester", "", "require", verify, true, ""},
		{"prefer", withTLS, "tester", "", "prefer", nil, true, ""},
		{"disable", withTLS, "tester", "", "disable", nil, false, ""},
		{"require without TLS", plain, "tester", "", "require", nil, false, "server refused TLS connection"},
		{"prefer without TLS", plain, "tester", "", "prefer", nil, false, ""},
		{"RequireTLS, disable", required, "tester", "", "disable", nil, false, "(SQLSTATE 28000)"},
		{"RequireTLS, require", required, "tester", "", "require", nil, true, ""},
		{"SCRAM over TLS", authTLS, "alice", "pw", "require", nil, true, ""},
		{"SCRAM over TLS, wrong password", authTLS, "alice", "nope", "require", nil, true, "(SQLSTATE 28P01)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.ts.dial(t, tc.user, tc.pw, tc.sslmode, tc.edit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("connect: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			_, isTLS := conn.PgConn().Conn().(*tls.Conn)
			if isTLS != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", isTLS, tc.wantTLS)
			}
			selectOne(t, conn)
		})
	}
	// A client refused for want of TLS leaves the server serving others.
	conn, err := plain.dial(t, "tester", "", "disable", nil)
	if err != nil {
		t.Fatal(err)
	}
	selectOne(t, conn)
}

// TestTLSProtocol covers the encryption requests byte by byte.
func TestTLSProtocol(t *testing.T) {
	ts := startServer(t, Config{TLS: testTLSConfig(t)})
	sslRequest := mustEncode(t, &pgproto3.SSLRequest{})
	gssRequest := mustEncode(t, &pgproto3.GSSEncRequest{})
	startup := mustEncode(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "raw"}})
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	readByte := func(t *testing.T, c net.Conn) byte {
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	upgrade := func(t *testing.T, c net.Conn) *tls.Conn {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		return tc
	}

	t.Run("GSSENC declined, then SSL", func(t *testing.T) {
		c := dial(t)
		_, _ = c.Write(gssRequest)
		if b := readByte(t, c); b != 'N' {
			t.Fatalf("GSSENCRequest answered %q", b)
		}
		_, _ = c.Write(sslRequest)
		if b := readByte(t, c); b != 'S' {
			t.Fatalf("SSLRequest answered %q", b)
		}
		tc := upgrade(t, c)
		_, _ = tc.Write(startup)
		fe := pgproto3.NewFrontend(tc, tc)
		receive[*pgproto3.AuthenticationOk](t, fe)
	})
	t.Run("clear text after SSLRequest", func(t *testing.T) {
		c := dial(t)
		// One write: the startup packet arrives with the request.
		_, _ = c.Write(append(append([]byte(nil), sslRequest...), startup...))
		e := receive[*pgproto3.ErrorResponse](t, pgproto3.NewFrontend(c, c))
		if e.Code != pgerrcode.ProtocolViolation || !strings.Contains(e.Message, "unencrypted data after SSL request") {
			t.Errorf("got %s %q", e.Code, e.Message)
		}
	})
	t.Run("SSLRequest inside TLS", func(t *testing.T) {
		c := dial(t)
		_, _ = c.Write(sslRequest)
		if b := readByte(t, c); b != 'S' {
			t.Fatalf("SSLRequest answered %q", b)
		}
		tc := upgrade(t, c)
		_, _ = tc.Write(sslRequest)
		e := receive[*pgproto3.ErrorResponse](t, pgproto3.NewFrontend(tc, tc))
		if e.Code != pgerrcode.ProtocolViolation {
			t.Errorf("got %s %q", e.Code, e.Message)
		}
	})
	t.Run("client drops the handshake", func(t *testing.T) {
		c := dial(t)
		_, _ = c.Write(sslRequest)
		if b := readByte(t, c); b != 'S' {
			t.Fatalf("SSLRequest answered %q", b)
		}
		_, _ = c.Write([]byte("not a TLS record, at all"))
		c.Close()
	})
	// The server still serves.
	conn, err := ts.dial(t, "tester", "", "require", nil)
	if err != nil {
		t.Fatal(err)
	}
	selectOne(t, conn)
}

func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"RequireTLS without TLS", Config{RequireTLS: true}, "RequireTLS without"},
		{"TLS without a certificate", Config{TLS: &tls.Config{}}, "no certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Engine = newTestEngine()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			err = New(tc.cfg).Serve(context.Background(), ln)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAuthOffLogged checks the one startup line that says anyone may
// connect.
func TestAuthOffLogged(t *testing.T) {
	for _, creds := range []*Credentials{nil, mustCredentials(t, map[string]string{"a": "b"})} {
		logs := &lockedBuffer{}
		startServer(t, Config{Credentials: creds, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		waitFor(t, 5*time.Second, func() error {
			if !strings.Contains(logs.String(), "msg=serving") {
				return errors.New("not serving yet")
			}
			return nil
		})
		off := strings.Count(logs.String(), "authentication is off")
		if want := map[bool]int{true: 1, false: 0}[creds == nil]; off != want {
			t.Errorf("credentials %v: %d lines say authentication is off, want %d:\n%s", creds != nil, off, want, logs)
		}
	}
}

// TestPsqlAuth runs psql with a password over TLS (required, so that a
// success proves TLS was used).
func TestPsqlAuth(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skipf("psql is not installed: %v", err)
	}
	ts := startServer(t, Config{TLS: testTLSConfig(t), RequireTLS: true, Credentials: mustCredentials(t, map[string]string{"alice": "ps ql"})})
	_, port, _ := net.SplitHostPort(ts.addr)
	run := func(password, sslmode string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, psql, "-X", "-A", "-t", "-w", "-c", "SELECT 1",
			fmt.Sprintf("host=127.0.0.1 port=%s user=alice dbname=psqldb sslmode=%s", port, sslmode))
		cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=", "PGGSSENCMODE=prefer")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("ps ql", "require"); err != nil || out != "1\n" {
		t.Errorf("psql: %q, %v", out, err)
	}
	if out, err := run("wrong", "require"); err == nil || !strings.Contains(out, `password authentication failed for user "alice"`) {
		t.Errorf("psql with a wrong password: %q, %v", out, err)
	}
	if out, err := run("ps ql", "disable"); err == nil || !strings.Contains(out, "requires TLS") {
		t.Errorf("psql without TLS: %q, %v", out, err)
	}
}
