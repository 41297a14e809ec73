package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure the NATS server StartEmbedded runs in process.
type EmbeddedOptions struct {
	// StoreDir is where JetStream keeps its data; required.
	StoreDir string
	// Host is the client listen address; "" means 127.0.0.1.
	Host string
	// Port is the client port; 0 and -1 mean a random free port.
	Port int
	// Logger receives the server's log; nil discards it. The server's
	// notices (its start-up banner) are logged at Debug, its warnings
	// and errors at Warn and Error.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept
	// connections; 0 means 10 s.
	ReadyTimeout time.Duration
}

// Embedded is a NATS server with JetStream running in this process.
type Embedded struct {
	srv      *server.Server
	log      *slog.Logger
	stopOnce sync.Once
}

// StartEmbedded starts a NATS server with JetStream on disk under
// opts.StoreDir and returns once it accepts connections.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("embedded nats: no store directory")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "nats")
	srv, err := server.NewServer(&server.Options{
		ServerName: "sessionsql",
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(slogAdapter{log}, false, false, false)
	srv.Start()
	e := &Embedded{srv: srv, log: log}
	if !srv.ReadyForConnections(opts.ReadyTimeout) {
		e.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready for connections on %s:%d after %v", opts.Host, opts.Port, opts.ReadyTimeout)
	}
	if !srv.JetStreamEnabled() {
		e.Shutdown()
		return nil, fmt.Errorf("embedded nats: jetstream did not start (store %s)", opts.StoreDir)
	}
	log.Info("embedded nats server started", "url", srv.ClientURL(), "store_dir", opts.StoreDir)
	return e, nil
}

// ClientURL returns the URL clients connect to, e.g. nats://127.0.0.1:4222.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Server returns the underlying server, for tests and in-process
// connections (nats.InProcessServer).
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has stopped. It is
// idempotent and safe from several goroutines.
func (e *Embedded) Shutdown() {
	e.stopOnce.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		e.log.Info("embedded nats server stopped")
	})
}

// slogAdapter is the server's Logger on top of slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) logf(level slog.Level, format string, v []any) {
	if !a.log.Enabled(context.Background(), level) {
		return
	}
	a.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

func (a slogAdapter) Noticef(format string, v ...any) { a.logf(slog.LevelDebug, format, v) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.logf(slog.LevelWarn, format, v) }

// Fatalf logs at Error: the embedding process decides whether to exit.
func (a slogAdapter) Fatalf(format string, v ...any) { a.logf(slog.LevelError, format, v) }
func (a slogAdapter) Errorf(format string, v ...any) { a.logf(slog.LevelError, format, v) }
func (a slogAdapter) Debugf(format string, v ...any) { a.logf(slog.LevelDebug, format, v) }
func (a slogAdapter) Tracef(format string, v ...any) { a.logf(slog.LevelDebug-4, format, v) }
