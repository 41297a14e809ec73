// Command sessionsql is the continuous-SQL engine for session analytics.
//
//	sessionsql [serve] [flags]    run the engine (the default command)
//	sessionsql bench [flags]      measure throughput against this machine's ceilings
//	sessionsql version            print the version
//
// serve starts, in this order: the embedded NATS server with JetStream
// (unless --nats names an external one), the catalog, the PostgreSQL sink
// (with --postgres), the engine (which restarts every saved source and
// view), and the PostgreSQL wire-protocol listener. On SIGINT or SIGTERM it
// stops in reverse: the listener first (no new statements), then the
// engine (readers before pipelines, so nothing is routed to a stopped
// view), then the sink's pool, the NATS connection and the embedded server.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/catalog"
	"github.com/sessionsql/sessionsql/exec/sink"
	"github.com/sessionsql/sessionsql/exec/source"
	"github.com/sessionsql/sessionsql/planner"
	"github.com/sessionsql/sessionsql/server"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sessionsql:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseServeFlags(args, stderr)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx, cfg, stdout)
	case "bench":
		cfg, err := parseBenchFlags(args, stderr)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runBench(ctx, cfg, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "sessionsql", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage: sessionsql [serve] [flags]   run the engine (default)
       sessionsql bench [flags]     measure throughput against this machine's ceilings
       sessionsql version           print the version
Run "sessionsql serve -h" for the flags.
`

// serveConfig is serve's configuration, from flags and the environment.
type serveConfig struct {
	dataDir    string
	natsURL    string
	natsListen string
	listen     string
	postgres   string
	logLevel   slog.Level
	logFormat  string
	// Wire-protocol security and limits (see securityConfig).
	tlsCert, tlsKey   string
	requireTLS        bool
	usersFile         string
	user              string
	maxConns          int
	maxStatementBytes int
	// metricsListen is where /metrics is served; "" turns it off.
	// metricsReady, when set, learns its address (tests use it).
	metricsListen string
	metricsReady  func(addr net.Addr)
	// checkpointInterval is how often views checkpoint and commit their
	// results to the sink database.
	checkpointInterval time.Duration
	// sinkBuffer bounds a view's result changes waiting for the sink.
	sinkBuffer int64
	// ready, when set, learns the wire listener's address and the NATS URL
	// once serve accepts clients (tests use it).
	ready func(addr net.Addr, natsURL string)
}

func parseServeFlags(args []string, stderr io.Writer) (*serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &serveConfig{}
	fs.StringVar(&c.dataDir, "data-dir", "./sessionsql-data", "directory for the embedded NATS server's JetStream data")
	fs.StringVar(&c.natsURL, "nats", "", "URL of an external NATS server with JetStream (default: run one embedded)")
	fs.StringVar(&c.natsListen, "nats-listen", "127.0.0.1:4223", "where the embedded NATS server listens for clients (port 0: a random port)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:5433", "PostgreSQL wire-protocol listen address")
	fs.StringVar(&c.postgres, "postgres", os.Getenv("SESSIONSQL_POSTGRES"), "PostgreSQL DSN of the result sink (also $SESSIONSQL_POSTGRES); empty: results live in memory only")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) for TLS on the wire listener; needs --tls-key. Default: no TLS (clients with sslmode=require are refused)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&c.requireTLS, "require-tls", false, "refuse clients that do not use TLS; needs --tls-cert")
	fs.StringVar(&c.usersFile, "users-file", "", "file of users allowed to connect, one user:password a line (# starts a comment), read at startup; turns on SCRAM-SHA-256 password authentication. Default, with no --user either: no authentication")
	fs.StringVar(&c.user, "user", "", "a user allowed to connect, with the password in $"+passwordEnv+"; turns on SCRAM-SHA-256 password authentication (combines with --users-file)")
	fs.StringVar(&c.metricsListen, "metrics-listen", "127.0.0.1:9464", "where Prometheus metrics are served at /metrics; empty: not served")
	fs.DurationVar(&c.checkpointInterval, "checkpoint-interval", planner.DefaultCheckpointInterval, "how often every view checkpoints its state and commits an epoch of results to --postgres (results reach PostgreSQL at each commit); a restart resumes from the last checkpoint")
	fs.Int64Var(&c.sinkBuffer, "sink-buffer-bytes", planner.DefaultSinkBuffer, "bytes of result changes a view keeps while --postgres is slow or unreachable, beyond two epochs waiting for their commit; past it the view stops taking events (backpressure) until the sink catches up")
	fs.IntVar(&c.maxConns, "max-connections", server.DefaultMaxConns, "most client connections served at once; more get SQLSTATE 53300")
	fs.IntVar(&c.maxStatementBytes, "max-statement-bytes", server.DefaultMaxStatementBytes, "longest statement accepted, in bytes; longer ones get SQLSTATE 54000")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return nil, fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)
	}
	if c.checkpointInterval < 10*time.Millisecond {
		return nil, fmt.Errorf("--checkpoint-interval must be at least 10ms, not %s", c.checkpointInterval)
	}
	if c.sinkBuffer < 1 {
		return nil, fmt.Errorf("--sink-buffer-bytes must be positive, not %d", c.sinkBuffer)
	}
	if c.maxConns < 1 {
		return nil, fmt.Errorf("--max-connections must be at least 1, not %d", c.maxConns)
	}
	if c.maxStatementBytes < 1 {
		return nil, fmt.Errorf("--max-statement-bytes must be at least 1, not %d", c.maxStatementBytes)
	}
	return c, nil
}

// passwordEnv holds the password of --user: an environment variable keeps
// it out of the process list and shell history.
const passwordEnv = "SESSIONSQL_PASSWORD"

// securityConfig loads what the wire listener's security flags name: the
// TLS certificate and the users' credentials (nil, nil: neither). It runs
// at startup so that a bad file stops serve before anything starts.
// Passwords are dropped once their SCRAM verifiers are derived.
func (c *serveConfig) securityConfig() (*tls.Config, *server.Credentials, error) {
	var tlsCfg *tls.Config
	switch {
	case c.tlsCert != "" && c.tlsKey != "":
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case c.tlsCert != "" || c.tlsKey != "":
		return nil, nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	case c.requireTLS:
		return nil, nil, errors.New("--require-tls needs --tls-cert and --tls-key")
	}

	users := map[string]string{}
	if c.usersFile != "" {
		f, err := os.Open(c.usersFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--users-file: %w", err)
		}
		users, err = server.ParseUsers(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("--users-file %s: %w", c.usersFile, err)
		}
	}
	if c.user != "" {
		password := os.Getenv(passwordEnv)
		if password == "" {
			return nil, nil, fmt.Errorf("--user %s: $%s is empty or unset", c.user, passwordEnv)
		}
		if _, dup := users[c.user]; dup {
			return nil, nil, fmt.Errorf("--user %s is also in --users-file", c.user)
		}
		users[c.user] = password
	}
	if len(users) == 0 {
		if c.usersFile != "" {
			return nil, nil, fmt.Errorf("--users-file %s lists no users", c.usersFile)
		}
		return tlsCfg, nil, nil
	}
	creds, err := server.NewCredentials(users)
	if err != nil {
		return nil, nil, err
	}
	return tlsCfg, creds, nil
}

func newLogger(c *serveConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.logLevel}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, c *serveConfig, logOut io.Writer) (err error) {
	log := newLogger(c, logOut)
	tlsCfg, creds, err := c.securityConfig()
	if err != nil {
		return err
	}
	url := c.natsURL
	if url == "" {
		host, port, err := splitHostPort(c.natsListen)
		if err != nil {
			return fmt.Errorf("--nats-listen: %w", err)
		}
		if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		emb, err := source.StartEmbedded(source.EmbeddedOptions{StoreDir: filepath.Join(c.dataDir, "jetstream"),
			Host: host, Port: port, Logger: log})
		if err != nil {
			return fmt.Errorf("start embedded NATS: %w", err)
		}
		defer emb.Shutdown()
		url = emb.ClientURL()
		log.Info("embedded NATS server running", "url", url, "data_dir", c.dataDir)
	}
	nc, err := nats.Connect(url, nats.Name("sessionsql"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed the connection ourselves
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrl()) }))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	store, err := catalog.NewKVStore(ctx, js)
	if err != nil {
		return err
	}
	cat, err := catalog.Open(ctx, store)
	if err != nil {
		return err
	}
	var pg *sink.Postgres
	if c.postgres != "" {
		pg, err = sink.OpenPostgres(ctx, c.postgres, log)
		if err != nil {
			return fmt.Errorf("--postgres: %w", err)
		}
		defer pg.Close()
		log.Info("PostgreSQL sink connected")
	}
	eng, err := planner.New(ctx, planner.Config{JS: js, Catalog: cat, Postgres: pg, Mem: memory.NewGoAllocator(), Log: log,
		CheckpointInterval: c.checkpointInterval, SinkBuffer: c.sinkBuffer})
	if err != nil {
		return err
	}
	defer eng.Close()
	if c.metricsListen != "" {
		mln, err := net.Listen("tcp", c.metricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", eng.MetricsHandler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close() // before eng.Close: no scrape of a closed engine
		log.Info("serving Prometheus metrics", "addr", "http://"+mln.Addr().String()+"/metrics")
		if c.metricsReady != nil {
			c.metricsReady(mln.Addr())
		}
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	srv := server.New(server.Config{Engine: eng, Logger: log, ServerVersion: "15.0 (sessionsql " + version + ")",
		MaxConns: c.maxConns, MaxStatementBytes: c.maxStatementBytes,
		Credentials: creds, TLS: tlsCfg, RequireTLS: c.requireTLS})
	log.Info("listening for PostgreSQL clients", "addr", ln.Addr().String(), "sources", len(cat.Sources()), "views", len(cat.Views()))
	if c.ready != nil {
		c.ready(ln.Addr(), url)
	}
	err = srv.Serve(ctx, ln)
	log.Info("shutting down")
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscan(p, &port); err != nil {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}
