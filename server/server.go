package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Defaults of Config's zero values.
const (
	// DefaultMaxConns is the connection limit when Config.MaxConns is 0.
	DefaultMaxConns = 100
	// DefaultMaxStatementBytes is the statement size limit when
	// Config.MaxStatementBytes is 0.
	DefaultMaxStatementBytes = 1 << 20
	// DefaultServerVersion is reported as server_version when
	// Config.ServerVersion is "". Clients parse the leading number (psql
	// and JDBC turn features on by it), so it must look like PostgreSQL's.
	DefaultServerVersion = "15.0 (sessionsql)"
)

const (
	// startupTimeout bounds the time a new connection may take to send its
	// startup packet, so that idle sockets cannot hold a goroutine forever.
	startupTimeout = 30 * time.Second
	// shutdownWriteTimeout bounds the last writes (the FATAL message) to a
	// client that does not read while the server shuts down.
	shutdownWriteTimeout = 2 * time.Second
	// maxAcceptDelay caps the back-off after a temporary Accept error.
	maxAcceptDelay = time.Second
)

// Config configures a Server.
type Config struct {
	// Engine runs the statements. Required.
	Engine Engine
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// MaxConns is the number of client connections served at once; a
	// client beyond it gets too_many_connections (53300). 0 means
	// DefaultMaxConns.
	MaxConns int
	// MaxStatementBytes is the longest query text accepted, in bytes; a
	// longer one gets program_limit_exceeded (54000). 0 means
	// DefaultMaxStatementBytes.
	MaxStatementBytes int
	// ServerVersion is reported as the server_version parameter; "" means
	// DefaultServerVersion.
	ServerVersion string
	// Credentials, when set, require every client to authenticate with
	// SCRAM-SHA-256 as one of its users; a wrong password or an unknown
	// user gets FATAL 28P01. Nil means trust: every user is accepted
	// without a password (Serve logs this once).
	Credentials *Credentials
	// TLS, when set, is offered to clients that send an SSLRequest
	// (sslmode=prefer, require, verify-*). It needs at least one
	// certificate. Nil means SSLRequest is declined, so sslmode=require
	// fails in the client. New adds the ALPN protocol "postgresql" when
	// NextProtos is empty.
	TLS *tls.Config
	// RequireTLS refuses clients that start without TLS with FATAL 28000
	// (CancelRequests are still served in clear text, as they carry no
	// data). It requires TLS.
	RequireTLS bool
}

// Server serves the PostgreSQL wire protocol (version 3.0) in front of an
// Engine. Create it with New and run it with Serve.
type Server struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	ln    net.Listener     // guarded by mu; the listener of the running Serve
	conns map[uint32]*conn // guarded by mu; established connections by process id

	wg sync.WaitGroup // one per connection goroutine
}

// New returns a Server for cfg, with defaults filled in.
func New(cfg Config) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxStatementBytes <= 0 {
		cfg.MaxStatementBytes = DefaultMaxStatementBytes
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = DefaultServerVersion
	}
	if cfg.TLS != nil && len(cfg.TLS.NextProtos) == 0 {
		// PostgreSQL 17 clients offer ALPN "postgresql"; answering it
		// costs nothing and keeps strict clients happy.
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.NextProtos = []string{"postgresql"}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:   cfg,
		log:   log.With("component", "pgwire"),
		conns: make(map[uint32]*conn),
	}
}

// Addr returns the address of the listener Serve runs on, or nil before
// Serve is called.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections on ln and serves each on its own goroutine
// until ctx is done (then it returns nil) or ln fails (then it returns the
// error). Either way it closes ln, ends every connection (a client in the
// middle of nothing gets a FATAL admin_shutdown message, a running
// statement sees its context cancelled) and waits for all the
// connections' goroutines before returning. Call it once per Server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.Engine == nil {
		return errors.New("pgwire: Config.Engine is nil")
	}
	if s.cfg.RequireTLS && s.cfg.TLS == nil {
		return errors.New("pgwire: Config.RequireTLS without Config.TLS")
	}
	if t := s.cfg.TLS; t != nil && len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		return errors.New("pgwire: Config.TLS has no certificate")
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	// Stop order: stop accepting, cancel the connections, wait for them.
	defer s.wg.Wait()
	defer cancel()
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	auth := "scram-sha-256"
	if s.cfg.Credentials == nil {
		auth = "off"
		// Trust is the default on loopback; anywhere else it deserves a
		// warning.
		level := slog.LevelWarn
		if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && ap.Addr().IsLoopback() {
			level = slog.LevelInfo
		}
		s.log.Log(ctx, level, "authentication is off: every user is accepted without a password")
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "auth", auth, "tls", s.cfg.TLS != nil, "require_tls", s.cfg.RequireTLS)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.log.Info("stopped serving", "addr", ln.Addr().String())
				return nil
			}
			if !temporaryAcceptError(err) {
				return fmt.Errorf("pgwire: accept on %s: %w", ln.Addr(), err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		delay = 0
		s.wg.Go(func() { s.serveConn(ctx, nc) })
	}
}

// temporaryAcceptError reports whether Accept may succeed when retried
// (out of file descriptors or buffers, an aborted handshake).
func temporaryAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// register adds c under a fresh random process id, unless MaxConns
// connections are already established. It fills c.pid and c.secret.
func (s *Server) register(c *conn) bool {
	var key [8]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.cfg.MaxConns {
		return false
	}
	for {
		// crypto/rand.Read never returns an error (Go 1.24+).
		_, _ = rand.Read(key[:])
		pid := binary.BigEndian.Uint32(key[:4]) & 0x7fffffff // positive, as a real pid
		if _, taken := s.conns[pid]; pid == 0 || taken {
			continue
		}
		c.pid = pid
		c.secret = append([]byte(nil), key[4:]...)
		s.conns[pid] = c
		return true
	}
}

// unregister removes c; its process id no longer cancels anything.
func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.pid] == c {
		delete(s.conns, c.pid)
	}
}

// cancel handles a CancelRequest: if pid and secret name an established
// connection, its running statement (if any) is cancelled. As in
// PostgreSQL, nothing is answered either way.
func (s *Server) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	c := s.conns[pid]
	s.mu.Unlock()
	if c == nil || subtle.ConstantTimeCompare(c.secret, secret) != 1 {
		s.log.Debug("cancel request for an unknown connection", "pid", pid)
		return
	}
	c.cancelRunning()
}
