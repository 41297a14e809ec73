package server

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

const (
	// scramMechanism is the only SASL mechanism offered. Channel binding
	// (SCRAM-SHA-256-PLUS) is not: clients fall back to plain SCRAM.
	scramMechanism = "SCRAM-SHA-256"
	// scramIterations and scramSaltBytes are PostgreSQL's defaults
	// (scram_iterations, SCRAM_DEFAULT_SALT_LEN).
	scramIterations = 4096
	scramSaltBytes  = 16
)

// Credentials are the SCRAM-SHA-256 verifiers of the users allowed to
// connect: per user a random salt, StoredKey and ServerKey, from which the
// password cannot be recovered. Build them with NewCredentials; they are
// immutable and safe for concurrent use.
type Credentials struct {
	users map[string]scram.StoredCredentials
	// mockKey derives a stable salt for names that are not users, so that
	// an unknown user sees the same exchange as a wrong password and
	// cannot be told apart from one (PostgreSQL's scram_mock_salt).
	mockKey []byte
}

// NewCredentials derives the verifiers of users (name → password) with a
// fresh random salt each and 4096 iterations. Passwords are normalized
// with SASLprep, falling back to the raw bytes when SASLprep rejects them,
// as PostgreSQL and its clients do. Empty names and empty passwords are
// errors. The caller should drop the map afterwards: only the verifiers
// are kept.
func NewCredentials(users map[string]string) (*Credentials, error) {
	c := &Credentials{users: make(map[string]scram.StoredCredentials, len(users)), mockKey: make([]byte, 32)}
	_, _ = rand.Read(c.mockKey) // crypto/rand.Read never fails (Go 1.24+)
	for name, password := range users {
		if name == "" {
			return nil, errors.New("credentials: empty user name")
		}
		if password == "" {
			return nil, fmt.Errorf("credentials: user %q has an empty password", name)
		}
		// Only the password enters the keys; the name is not prepared, so
		// any name PostgreSQL accepts works.
		client, err := scram.SHA256.NewClient("", password, "")
		if err != nil {
			client, _ = scram.SHA256.NewClientUnprepped("", password, "")
		}
		salt := make([]byte, scramSaltBytes)
		_, _ = rand.Read(salt)
		sc, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
		if err != nil {
			return nil, fmt.Errorf("credentials: user %q: %w", name, err)
		}
		c.users[name] = sc
	}
	return c, nil
}

// Len returns the number of users.
func (c *Credentials) Len() int { return len(c.users) }

// lookup returns the verifier of user and whether the user exists. For an
// unknown user it returns a mock verifier with a salt that is stable for
// the name and keys that no password matches.
func (c *Credentials) lookup(user string) (scram.StoredCredentials, bool) {
	if sc, ok := c.users[user]; ok {
		return sc, true
	}
	mac := hmac.New(sha256.New, c.mockKey)
	mac.Write([]byte(user))
	salt := mac.Sum(nil)[:scramSaltBytes]
	stored, server := make([]byte, sha256.Size), make([]byte, sha256.Size)
	_, _ = rand.Read(stored)
	_, _ = rand.Read(server)
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: scramIterations},
		StoredKey:  stored,
		ServerKey:  server,
	}, false
}

// ParseUsers reads a users file: one "user:password" per line (the
// password is everything after the first colon, taken verbatim), blank
// lines and lines starting with '#' (after leading blanks) ignored. A
// malformed line or a user listed twice is an error naming the line
// number; the error never quotes a password.
func ParseUsers(r io.Reader) (map[string]string, error) {
	users := make(map[string]string)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		name, password, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d: want user:password", n)
		case strings.TrimSpace(name) != name || name == "":
			return nil, fmt.Errorf("line %d: empty user name or blanks around it", n)
		case password == "":
			return nil, fmt.Errorf("line %d: user %q has an empty password", n, name)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("line %d: user %q listed twice", n, name)
		}
		users[name] = password
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// authenticate checks the client's credentials and on success queues
// AuthenticationOk. Without Config.Credentials every user is accepted
// (trust). Otherwise it runs SCRAM-SHA-256 as PostgreSQL does:
//
//	server: AuthenticationSASL{SCRAM-SHA-256}
//	client: SASLInitialResponse (client-first-message)
//	server: AuthenticationSASLContinue (server-first-message: nonce, salt, iterations)
//	client: SASLResponse (client-final-message with the proof)
//	server: AuthenticationSASLFinal (server signature), AuthenticationOk
//
// The user is the startup packet's; the SCRAM user name (empty from libpq
// and pgx) is ignored, as in PostgreSQL. It reports whether the client is
// in; if not, the client has been sent a FATAL error (28P01 for a wrong
// password or an unknown user alike) unless it hung up, and the error, if
// any, says why.
func (c *conn) authenticate(user string) (bool, error) {
	creds := c.srv.cfg.Credentials
	if creds == nil {
		c.send(&pgproto3.AuthenticationOk{})
		return true, nil
	}
	sc, known := creds.lookup(user)
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return sc, nil })
	if err != nil {
		return false, err
	}
	conv := srv.NewConversation()
	failed := func(reason string) (bool, error) {
		c.log.Warn("password authentication failed", "user", user, "reason", reason)
		c.sendFatal(fatal(pgerrcode.InvalidPassword, "password authentication failed for user %q", user))
		return false, nil
	}

	c.send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{scramMechanism}})
	first, err := c.receiveAuth(pgproto3.AuthTypeSASL)
	if err != nil {
		return false, err
	}
	init, ok := first.(*pgproto3.SASLInitialResponse)
	if !ok {
		return false, c.authViolation("expected SASL response, got %T", first)
	}
	if init.AuthMechanism != scramMechanism {
		return false, c.authViolation("client selected an invalid SASL authentication mechanism %q", init.AuthMechanism)
	}
	serverFirst, err := conv.Step(string(init.Data))
	if err != nil {
		return false, c.authViolation("malformed SCRAM message: %v", err)
	}

	c.send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	final, err := c.receiveAuth(pgproto3.AuthTypeSASLContinue)
	if err != nil {
		return false, err
	}
	resp, ok := final.(*pgproto3.SASLResponse)
	if !ok {
		return false, c.authViolation("expected SASL response, got %T", final)
	}
	serverFinal, err := conv.Step(string(resp.Data))
	switch {
	case !known:
		return failed("no such user")
	case err != nil || !conv.Valid():
		// A bad proof, or a final message that does not match the first
		// (nonce, channel binding flag): all look like a wrong password.
		return failed(fmt.Sprint(err))
	}
	c.send(&pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)})
	c.send(&pgproto3.AuthenticationOk{})
	return true, nil
}

// receiveAuth flushes what is queued and reads the client's next
// authentication message, decoding 'p' messages as authType's answer.
func (c *conn) receiveAuth(authType uint32) (pgproto3.FrontendMessage, error) {
	if err := c.be.Flush(); err != nil {
		return nil, fmt.Errorf("send authentication request: %w", err)
	}
	if err := c.be.SetAuthType(authType); err != nil {
		return nil, err
	}
	msg, err := c.be.Receive()
	if err != nil {
		if !isNormalClosure(err) {
			c.sendFatal(fatal(pgerrcode.ProtocolViolation, "invalid authentication message: %v", err))
		}
		return nil, fmt.Errorf("read authentication message: %w", err)
	}
	return msg, nil
}

// authViolation answers a malformed authentication exchange with FATAL
// 08P01 and returns the error.
func (c *conn) authViolation(format string, args ...any) error {
	resp := fatal(pgerrcode.ProtocolViolation, format, args...)
	c.sendFatal(resp)
	return errors.New(resp.Message)
}
