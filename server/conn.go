package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sessionsql/sessionsql/sql"
	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

const (
	// readAhead is how many decoded messages the reader may hold while a
	// statement runs. Clients pipeline (Parse/Bind/Execute/Sync, pgx
	// batches); a bounded queue keeps a flooding client from growing memory.
	readAhead = 16
	// flushBytes is how much result data is buffered before it is written
	// out mid-statement (PostgreSQL flushes when its 8 KiB buffer fills).
	flushBytes = 64 << 10
	// logQueryBytes bounds the statement text quoted in logs.
	logQueryBytes = 1 << 10
)

// Transaction status bytes of ReadyForQuery.
const (
	txIdle   byte = 'I' // not in a transaction block
	txBlock  byte = 'T' // in a transaction block
	txFailed byte = 'E' // in a failed transaction block
)

// errTerminate ends the connection quietly: the client sent Terminate.
var errTerminate = errors.New("client sent Terminate")

// errAborted is PostgreSQL's answer to a statement in a failed
// transaction block other than one that ends the block.
var errAborted = sqlerr.New(pgerrcode.InFailedSQLTransaction,
	"current transaction is aborted, commands ignored until end of transaction block")

// conn is one client connection. The connection goroutine (serveConn)
// owns every field except those under mu: it alone calls the Session and
// writes to the socket. The reader goroutine only reads from the socket
// through be.Receive and hands copies of the messages over a channel.
type conn struct {
	srv *Server
	nc  net.Conn          // the socket, or its TLS layer once tls is set
	raw *countingReader   // the socket's reads, counted (startup only)
	tls bool              // the client upgraded to TLS
	be  *pgproto3.Backend // Receive: reader goroutine; Send/Flush: connection goroutine
	log *slog.Logger
	enc *encoder

	// pid and secret are the BackendKeyData; set once by Server.register.
	pid    uint32
	secret []byte

	mu         sync.Mutex
	cancelStmt context.CancelCauseFunc // guarded by mu; non-nil while the engine runs

	sess           Session
	tx             byte // txIdle, txBlock or txFailed
	stmts          map[string]*stmt
	portals        map[string]*portal
	ignoreTillSync bool // an extended-protocol message failed: discard until Sync
	pending        int  // bytes sent since the last flush (approximate)
}

// stmt is a prepared statement (Parse).
type stmt struct {
	text     string    // the statement, trimmed; "" for an empty query
	posBase  int       // characters of the Parse query before text
	declared []uint32  // parameter OIDs the client declared in Parse
	prep     *Prepared // nil for an empty query
	txEnd    bool      // the statement may run in a failed transaction block
}

// params returns the OIDs of the statement's parameters.
// params returns the parameter types a Describe reports: the ones the
// client declared in Parse, as PostgreSQL does (pgjdbc refuses to see a
// declared varchar come back as text), and the engine's for the others.
func (s *stmt) params() []uint32 {
	if s.prep == nil {
		return nil
	}
	oids := slices.Clone(s.prep.Params)
	for i := range oids {
		if i < len(s.declared) && s.declared[i] != 0 {
			oids[i] = s.declared[i]
		}
	}
	return oids
}

// columns returns the statement's result columns (nil: no rows).
func (s *stmt) columns() []Column {
	if s.prep == nil {
		return nil
	}
	return s.prep.Columns
}

// portal is a bound statement (Bind). It runs once, on its first Execute;
// later Executes (after PortalSuspended) send the remaining rows.
type portal struct {
	stmt        *stmt
	params      []any
	formatCodes []int16 // as sent in Bind; expanded per column when rows are sent
	res         *Result // nil until executed
	next        int     // index of the next row of res to send
	suspended   bool    // an Execute stopped at its row limit
}

// inbound is what the reader hands to the connection goroutine: a message
// it owns, or the error that ended reading.
type inbound struct {
	msg pgproto3.FrontendMessage
	err error
}

// serveConn runs one client connection from startup to close.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	log := s.log.With("remote_addr", nc.RemoteAddr().String())
	raw := &countingReader{r: nc}
	c := &conn{
		srv:     s,
		nc:      nc,
		raw:     raw,
		be:      newBackend(raw, nc, s.cfg.MaxStatementBytes),
		log:     log,
		enc:     newEncoder(),
		tx:      txIdle,
		stmts:   make(map[string]*stmt),
		portals: make(map[string]*portal),
	}
	// On shutdown, unblock a pending read at once and give the last writes
	// a bounded time; run notices ctx and says goodbye.
	stop := context.AfterFunc(ctx, func() {
		now := time.Now()
		_ = nc.SetReadDeadline(now)
		_ = nc.SetWriteDeadline(now.Add(shutdownWriteTimeout))
	})
	defer stop()

	_ = nc.SetReadDeadline(time.Now().Add(startupTimeout))
	ok, err := c.startup()
	if c.pid != 0 {
		defer s.unregister(c)
	}
	if err != nil || !ok {
		if err != nil {
			log.Debug("connection ended during startup", "err", err)
		}
		return
	}
	if ctx.Err() == nil {
		_ = nc.SetReadDeadline(time.Time{})
	}
	log = log.With("pid", c.pid)
	c.log = log
	defer c.closeSession()

	err = c.run(ctx)
	switch {
	case err == nil || errors.Is(err, errTerminate):
		log.Debug("connection closed")
	default:
		// Client-side trouble (hang-ups, garbage) is not the server's
		// fault; statement failures were logged where they happened.
		log.Debug("connection ended", "err", err)
	}
}

// closeSession closes the engine session; a panic there is logged, not
// propagated, so that one broken session cannot take the server down.
func (c *conn) closeSession() {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic closing session", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	c.sess.Close()
}

// startup reads the startup packet, answering SSL and GSS encryption
// requests and serving a CancelRequest. An SSLRequest is answered 'S' and
// the connection upgraded to TLS when Config.TLS is set, 'N' otherwise;
// GSS encryption is always declined. It reports whether the connection was
// accepted: then the session exists, the client has been sent
// AuthenticationOk, the parameters, BackendKeyData and ReadyForQuery.
func (c *conn) startup() (bool, error) {
	// Each encryption request is 8 bytes; bytes read beyond them before
	// the TLS handshake were sent in clear text after the SSLRequest and
	// would be taken as coming through TLS (CVE-2021-23214).
	consumed := int64(0)
	for range 3 {
		msg, err := c.be.ReceiveStartupMessage()
		if err != nil {
			if !isNormalClosure(err) {
				c.sendFatal(fatal(pgerrcode.ProtocolViolation, "invalid startup packet: %v", err))
			}
			return false, fmt.Errorf("read startup message: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			consumed += 8
			if c.tls {
				c.sendFatal(fatal(pgerrcode.ProtocolViolation, "encryption requested on an encrypted connection"))
				return false, errors.New("encryption request after TLS")
			}
			if _, ok := m.(*pgproto3.SSLRequest); ok && c.srv.cfg.TLS != nil {
				if c.raw.n != consumed {
					c.sendFatal(fatal(pgerrcode.ProtocolViolation, "received unencrypted data after SSL request"))
					return false, errors.New("unencrypted data after SSL request")
				}
				if err := c.startTLS(); err != nil {
					return false, err
				}
				continue
			}
			// 'N' tells the client to go on in clear text with a
			// StartupMessage (or to give up, with sslmode=require).
			if _, err := c.nc.Write([]byte{'N'}); err != nil {
				return false, fmt.Errorf("answer encryption request: %w", err)
			}
		case *pgproto3.CancelRequest:
			c.srv.cancel(m.ProcessID, m.SecretKey)
			return false, nil
		case *pgproto3.StartupMessage:
			if c.srv.cfg.RequireTLS && !c.tls {
				c.log.Info("connection refused: TLS required", "user", m.Parameters["user"])
				c.sendFatal(fatal(pgerrcode.InvalidAuthorizationSpecification, "this server requires TLS: connect with sslmode=require"))
				return false, nil
			}
			return c.accept(m)
		default:
			return false, fmt.Errorf("unexpected startup message %T", msg)
		}
	}
	c.sendFatal(fatal(pgerrcode.ProtocolViolation, "too many encryption requests"))
	return false, errors.New("too many encryption requests")
}

// startTLS answers an SSLRequest with 'S', runs the TLS handshake (bounded
// by the startup read deadline) and switches the connection over to it.
func (c *conn) startTLS() error {
	if _, err := c.nc.Write([]byte{'S'}); err != nil {
		return fmt.Errorf("answer SSL request: %w", err)
	}
	tc := tls.Server(c.nc, c.srv.cfg.TLS)
	if err := tc.Handshake(); err != nil {
		// No ErrorResponse: the client speaks TLS now, and the handshake
		// failing means there is no channel to send it on.
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.nc = tc
	c.tls = true
	c.be = newBackend(tc, tc, c.srv.cfg.MaxStatementBytes)
	c.log.Debug("TLS established", "version", tls.VersionName(tc.ConnectionState().Version))
	return nil
}

// countingReader counts the bytes read from the socket, for the check
// that nothing follows an SSLRequest in clear text.
type countingReader struct {
	r io.Reader
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// newBackend returns the pgproto3 backend of a connection. Larger messages
// than its limit cannot be a statement within limits plus its
// parameters; refusing them bounds what one client can allocate.
func newBackend(r io.Reader, w io.Writer, maxStatementBytes int) *pgproto3.Backend {
	be := pgproto3.NewBackend(r, w)
	be.SetMaxBodyLen(4*maxStatementBytes + 64<<10)
	return be
}

// accept admits the client of a StartupMessage.
func (c *conn) accept(m *pgproto3.StartupMessage) (bool, error) {
	params := m.Parameters
	var unrecognized []string
	for k := range params {
		if strings.HasPrefix(k, "_pq_.") {
			unrecognized = append(unrecognized, k)
		}
	}
	slices.Sort(unrecognized)
	if m.ProtocolVersion != pgproto3.ProtocolVersion30 || len(unrecognized) > 0 {
		// Protocol 3.2 (longer cancel keys) is not spoken yet: offer 3.0,
		// which every client accepts, as PostgreSQL 17 does.
		c.log.Debug("negotiating protocol 3.0", "requested", fmt.Sprintf("%d.%d", m.ProtocolVersion>>16, m.ProtocolVersion&0xffff), "unrecognized_options", unrecognized)
		c.be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unrecognized})
	}
	user := params["user"]
	if user == "" {
		c.sendFatal(fatal(pgerrcode.InvalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet"))
		return false, nil
	}
	database := params["database"]
	if database == "" {
		database = user
	}
	if !c.srv.register(c) {
		c.log.Warn("connection refused: too many connections", "max_conns", c.srv.cfg.MaxConns)
		c.sendFatal(fatal(pgerrcode.TooManyConnections, "sorry, too many clients already"))
		return false, nil
	}
	if ok, err := c.authenticate(user); !ok {
		return false, err
	}
	c.sess = c.srv.cfg.Engine.NewSession(user, database)
	for _, p := range [][2]string{
		{"application_name", params["application_name"]},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
		{"IntervalStyle", "postgres"},
		{"is_superuser", "off"},
		{"server_encoding", "UTF8"},
		{"server_version", c.srv.cfg.ServerVersion},
		{"session_authorization", user},
		{"standard_conforming_strings", "on"},
		{"TimeZone", "UTC"},
	} {
		c.be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	c.be.Send(&pgproto3.BackendKeyData{ProcessID: c.pid, SecretKey: c.secret})
	c.be.Send(&pgproto3.ReadyForQuery{TxStatus: txIdle})
	if err := c.be.Flush(); err != nil {
		c.closeSession()
		return false, fmt.Errorf("send startup response: %w", err)
	}
	c.log.Debug("connection accepted", "user", user, "database", database, "application_name", params["application_name"])
	return true, nil
}

// sendFatal sends a FATAL error; the caller then closes the connection,
// so a write failure does not matter.
func (c *conn) sendFatal(resp *pgproto3.ErrorResponse) {
	c.be.Send(resp)
	_ = c.be.Flush()
}

// run serves messages until the client leaves or ctx (the server's) is
// done. A reader goroutine decodes messages ahead so that the socket is
// watched while a statement runs: a client that hangs up cancels its
// statement. (CancelRequests arrive on other connections and reach the
// running statement through Server.cancel.)
func (c *conn) run(ctx context.Context) (err error) {
	connCtx, cancelConn := context.WithCancelCause(ctx)
	defer cancelConn(nil)

	msgs := make(chan inbound, readAhead)
	done := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.read(cancelConn, msgs, done)
	}()
	defer func() {
		if ctx.Err() != nil {
			c.sendFatal(fatal(pgerrcode.AdminShutdown, "terminating connection due to administrator command"))
		}
		// Closing the socket unblocks the reader's Receive; it is waited
		// for so that no goroutine outlives the connection.
		close(done)
		_ = c.nc.Close()
		<-readerDone
	}()

	for {
		select {
		case <-ctx.Done():
			return nil
		case in := <-msgs:
			if in.err != nil {
				return c.readFailed(in.err)
			}
			if err := c.handle(connCtx, in.msg); err != nil {
				return err
			}
		}
	}
}

// read is the reader goroutine: it decodes messages and hands copies to
// the connection goroutine until reading fails, Terminate arrives or done
// is closed.
func (c *conn) read(cancelConn context.CancelCauseFunc, out chan<- inbound, done <-chan struct{}) {
	for {
		msg, err := c.be.Receive()
		if err != nil {
			// Nothing the client sends from here on can be answered, so
			// stop whatever runs on its behalf.
			cancelConn(fmt.Errorf("read from client: %w", err))
			select {
			case out <- inbound{err: err}:
			case <-done:
			}
			return
		}
		msg = cloneMessage(msg)
		select {
		case out <- inbound{msg: msg}:
		case <-done:
			return
		}
		if _, ok := msg.(*pgproto3.Terminate); ok {
			return
		}
	}
}

// readFailed answers the error that stopped the reader and returns it.
func (c *conn) readFailed(err error) error {
	if isNormalClosure(err) {
		return err
	}
	var tooLong *pgproto3.ExceededMaxBodyLenErr
	if errors.As(err, &tooLong) {
		c.sendFatal(fatal(pgerrcode.ProgramLimitExceeded,
			"message of %d bytes exceeds the limit of %d bytes", tooLong.ActualBodyLen, tooLong.MaxExpectedBodyLen))
		// The client is still sending the message. Closing with its bytes
		// unread makes the kernel reset the connection, and the client
		// may lose the FATAL before reading it: read the rest first (for
		// a second at most; the client hangs up once it has the FATAL).
		_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, int64(tooLong.ActualBodyLen)+1))
	} else {
		c.sendFatal(fatal(pgerrcode.ProtocolViolation, "invalid frontend message: %v", err))
	}
	return fmt.Errorf("read from client: %w", err)
}

// cloneMessage returns a copy of msg that stays valid after the next
// Receive: pgproto3 decodes into reused structs, and Bind's parameters
// point into its read buffer.
func cloneMessage(msg pgproto3.FrontendMessage) pgproto3.FrontendMessage {
	switch m := msg.(type) {
	case *pgproto3.Query:
		c := *m
		return &c
	case *pgproto3.Parse:
		c := *m
		c.ParameterOIDs = slices.Clone(m.ParameterOIDs)
		return &c
	case *pgproto3.Bind:
		c := *m
		c.ParameterFormatCodes = slices.Clone(m.ParameterFormatCodes)
		c.ResultFormatCodes = slices.Clone(m.ResultFormatCodes)
		c.Parameters = make([][]byte, len(m.Parameters))
		for i, p := range m.Parameters {
			if p != nil {
				c.Parameters[i] = append(make([]byte, 0, len(p)), p...)
			}
		}
		return &c
	case *pgproto3.Describe:
		c := *m
		return &c
	case *pgproto3.Execute:
		c := *m
		return &c
	case *pgproto3.Close:
		c := *m
		return &c
	case *pgproto3.Sync:
		return &pgproto3.Sync{}
	case *pgproto3.Flush:
		return &pgproto3.Flush{}
	case *pgproto3.Terminate:
		return &pgproto3.Terminate{}
	case *pgproto3.CopyData:
		return &pgproto3.CopyData{} // contents are never read
	case *pgproto3.CopyDone:
		return &pgproto3.CopyDone{}
	case *pgproto3.CopyFail:
		c := *m
		return &c
	case *pgproto3.FunctionCall:
		return &pgproto3.FunctionCall{Function: m.Function} // arguments are never read
	}
	// Password and SASL messages are allocated per Receive.
	return msg
}

// handle serves one message. It returns an error only when the connection
// must end. A panic while serving the message is recovered here: the
// client gets internal_error and the connection goes on.
func (c *conn) handle(ctx context.Context, msg pgproto3.FrontendMessage) (err error) {
	defer func() {
		if r := recover(); r != nil {
			perr := &panicError{value: r, stack: debug.Stack()}
			c.fail(perr, 0, "")
			if isExtended(msg) {
				c.ignoreTillSync = true
			} else if _, ok := msg.(*pgproto3.Query); ok {
				c.send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
			}
			err = c.flush()
		}
	}()

	if c.ignoreTillSync {
		switch msg.(type) {
		case *pgproto3.Sync, *pgproto3.Terminate:
		default:
			return nil
		}
	}
	switch m := msg.(type) {
	case *pgproto3.Query:
		return c.simpleQuery(ctx, m.String)
	case *pgproto3.Parse:
		return c.extended(c.parse(ctx, m))
	case *pgproto3.Bind:
		return c.extended(c.bind(m))
	case *pgproto3.Describe:
		return c.extended(c.describe(m))
	case *pgproto3.Execute:
		return c.extended(c.execute(ctx, m))
	case *pgproto3.Close:
		return c.extended(c.closeObject(m))
	case *pgproto3.Sync:
		c.ignoreTillSync = false
		c.endImplicitTransaction()
		return c.readyForQuery()
	case *pgproto3.Flush:
		return c.flush()
	case *pgproto3.Terminate:
		return errTerminate
	case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
		// Outside COPY these are ignored, as PostgreSQL does: they are the
		// tail of a COPY that failed.
		return nil
	case *pgproto3.FunctionCall:
		c.fail(sqlerr.New(pgerrcode.FeatureNotSupported, "the function call protocol is not supported"), 0, "")
		return c.readyForQuery()
	}
	c.sendFatal(fatal(pgerrcode.ProtocolViolation, "unexpected message %T", msg))
	return &fatalError{err: fmt.Errorf("unexpected message %T", msg)}
}

// isExtended reports whether msg belongs to the extended query protocol,
// where an error means discarding messages until Sync.
func isExtended(msg pgproto3.FrontendMessage) bool {
	switch msg.(type) {
	case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close:
		return true
	}
	return false
}

// extended finishes an extended-protocol message: an error is answered
// and starts discarding until Sync; a fatal error ends the connection.
func (c *conn) extended(err error) error {
	if err == nil {
		return c.maybeFlush()
	}
	var fe *fatalError
	if errors.As(err, &fe) {
		return err
	}
	base, text := errorContext(err)
	c.fail(err, base, text)
	c.ignoreTillSync = true
	return c.maybeFlush()
}

// stmtError attaches the statement an error belongs to: its text (for the
// log) and the characters of the query string before it (for positions).
type stmtError struct {
	err     error
	text    string
	posBase int
}

func (e *stmtError) Error() string { return e.err.Error() }
func (e *stmtError) Unwrap() error { return e.err }

func errorContext(err error) (posBase int, text string) {
	var se *stmtError
	if errors.As(err, &se) {
		return se.posBase, se.text
	}
	return 0, ""
}

// fail sends err as an ErrorResponse, logs it if it is the server's fault,
// and marks an open transaction block failed.
func (c *conn) fail(err error, posBase int, text string) {
	var perr *panicError
	switch {
	case errors.As(err, &perr):
		c.log.Error("panic in statement", "panic", perr.value, "query", truncate(text), "stack", string(perr.stack))
	case isInternal(err):
		c.log.Error("statement failed", "err", err, "query", truncate(text))
	}
	c.send(errorResponse(err, posBase))
	if c.tx == txBlock {
		c.tx = txFailed
	}
}

func truncate(s string) string {
	if len(s) <= logQueryBytes {
		return s
	}
	return s[:logQueryBytes] + "..."
}

// send buffers msg for the client.
func (c *conn) send(msg pgproto3.BackendMessage) { c.be.Send(msg) }

// flush writes what is buffered; failure ends the connection.
func (c *conn) flush() error {
	c.pending = 0
	if err := c.be.Flush(); err != nil {
		return &fatalError{err: fmt.Errorf("write to client: %w", err)}
	}
	return nil
}

// maybeFlush flushes when enough output is buffered.
func (c *conn) maybeFlush() error {
	if c.pending < flushBytes {
		return nil
	}
	return c.flush()
}

// readyForQuery tells the client the server awaits the next query.
func (c *conn) readyForQuery() error {
	c.send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
	return c.flush()
}

// noteTag follows BEGIN / COMMIT / ROLLBACK by their command tags: the
// engine runs them, the server only reports the status.
func (c *conn) noteTag(tag string) {
	switch tag {
	case "BEGIN", "START TRANSACTION":
		c.tx = txBlock
	case "COMMIT", "ROLLBACK":
		c.tx = txIdle
	}
}

// endImplicitTransaction ends the implicit transaction of a Sync or a
// simple Query: outside a transaction block, portals do not outlive it.
func (c *conn) endImplicitTransaction() {
	if c.tx == txIdle {
		clear(c.portals)
	}
}

// tooLong is the error for a statement over MaxStatementBytes.
func (c *conn) tooLong(n int) error {
	return sqlerr.New(pgerrcode.ProgramLimitExceeded,
		"statement is too long: %d bytes, the limit is %d", n, c.srv.cfg.MaxStatementBytes)
}

// engineCall runs f, a call into the Session, with a context that a
// CancelRequest cancels, turning a panic into an error. When the
// connection itself is going away (client gone, server shutting down) the
// error becomes fatal.
func (c *conn) engineCall(ctx context.Context, f func(ctx context.Context) error) (err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	c.cancelStmt = cancel
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.cancelStmt = nil
		c.mu.Unlock()
		cancel(nil)
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
		if err != nil && ctx.Err() != nil {
			err = &fatalError{err: fmt.Errorf("connection ending (%v): %w", context.Cause(ctx), err)}
		}
	}()
	return f(sctx)
}

// cancelRunning cancels the statement the engine is running, if any; it
// is called from another connection's goroutine.
func (c *conn) cancelRunning() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelStmt != nil {
		c.cancelStmt(errCancelRequested)
	}
}

// prepare asks the engine to analyse one statement.
func (c *conn) prepare(ctx context.Context, text string, oids []uint32) (*Prepared, error) {
	var p *Prepared
	err := c.engineCall(ctx, func(ctx context.Context) error {
		var err error
		p, err = c.sess.Prepare(ctx, text, oids)
		return err
	})
	if err == nil && p == nil {
		err = errors.New("engine returned no prepared statement and no error")
	}
	return p, err
}

// exec asks the engine to run a prepared statement and checks the shape of
// its result.
func (c *conn) exec(ctx context.Context, p *Prepared, params []any) (*Result, error) {
	var res *Result
	err := c.engineCall(ctx, func(ctx context.Context) error {
		var err error
		res, err = c.sess.Execute(ctx, p, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, errors.New("engine returned no result and no error")
	}
	for i, row := range res.Rows {
		if len(row) != len(res.Columns) {
			return nil, fmt.Errorf("engine returned row %d with %d values for %d columns", i, len(row), len(res.Columns))
		}
	}
	return res, nil
}

// sendRows sends rows as DataRows, the values of column i in formats[i]
// (nil: all text).
func (c *conn) sendRows(cols []Column, rows [][]any, formats []int16) error {
	oids := columnOIDs(cols)
	values := make([][]byte, len(cols))
	scratch := make([]byte, 0, 256)
	for _, row := range rows {
		scratch = scratch[:0]
		size := 7
		for i, v := range row {
			var f int16
			if formats != nil {
				f = formats[i]
			}
			start := len(scratch)
			out, err := c.enc.appendValue(scratch, oids[i], f, v)
			if err != nil {
				return fmt.Errorf("column %q: %w", cols[i].Name, err)
			}
			if v == nil || out == nil {
				values[i] = nil
				continue
			}
			scratch = out
			values[i] = scratch[start:len(scratch):len(scratch)]
			size += 4 + len(values[i])
		}
		c.send(&pgproto3.DataRow{Values: values})
		c.pending += size
		if err := c.maybeFlush(); err != nil {
			return err
		}
	}
	return nil
}

// simpleQuery serves a Query message: each statement of the string runs
// in turn; the first error skips the rest. ReadyForQuery ends it.
func (c *conn) simpleQuery(ctx context.Context, q string) error {
	// A simple Query destroys the unnamed statement and portal.
	delete(c.stmts, "")
	delete(c.portals, "")
	if len(q) > c.srv.cfg.MaxStatementBytes {
		c.fail(c.tooLong(len(q)), 0, "")
	} else {
		pieces := sql.Split(q)
		if len(pieces) == 0 {
			c.send(&pgproto3.EmptyQueryResponse{})
		}
		for _, p := range pieces {
			base := sqlerr.RunePos(q, p.Offset) - 1
			if err := c.runSimple(ctx, p.Text); err != nil {
				var fe *fatalError
				if errors.As(err, &fe) {
					return err
				}
				c.fail(err, base, p.Text)
				break
			}
		}
	}
	c.endImplicitTransaction()
	return c.readyForQuery()
}

// runSimple runs one statement of a simple query and sends its rows in
// text format.
func (c *conn) runSimple(ctx context.Context, text string) error {
	if c.tx == txFailed && !endsTransaction(text) {
		return errAborted
	}
	p, err := c.prepare(ctx, text, nil)
	if err != nil {
		return err
	}
	if len(p.Params) > 0 {
		return sqlerr.New(pgerrcode.UndefinedParameter, "there is no parameter $1")
	}
	res, err := c.exec(ctx, p, nil)
	if err != nil {
		return err
	}
	if res.Columns != nil {
		c.send(rowDescription(res.Columns, nil))
	}
	if err := c.sendRows(res.Columns, res.Rows, nil); err != nil {
		return err
	}
	c.send(&pgproto3.CommandComplete{CommandTag: []byte(res.Tag)})
	c.noteTag(res.Tag)
	return nil
}

// parse serves Parse: the statement is analysed now and stored.
func (c *conn) parse(ctx context.Context, m *pgproto3.Parse) error {
	if m.Name == "" {
		delete(c.stmts, "")
	} else if _, ok := c.stmts[m.Name]; ok {
		return sqlerr.New(pgerrcode.DuplicatePreparedStatement, "prepared statement %q already exists", m.Name)
	}
	if len(m.Query) > c.srv.cfg.MaxStatementBytes {
		return c.tooLong(len(m.Query))
	}
	pieces := sql.Split(m.Query)
	if len(pieces) > 1 {
		return sqlerr.New(pgerrcode.SyntaxError, "cannot insert multiple commands into a prepared statement")
	}
	st := &stmt{declared: m.ParameterOIDs}
	if len(pieces) == 1 {
		st.text = pieces[0].Text
		st.posBase = sqlerr.RunePos(m.Query, pieces[0].Offset) - 1
		st.txEnd = endsTransaction(st.text)
		if c.tx == txFailed && !st.txEnd {
			return errAborted
		}
		p, err := c.prepare(ctx, st.text, m.ParameterOIDs)
		if err != nil {
			return &stmtError{err: err, text: st.text, posBase: st.posBase}
		}
		st.prep = p
	}
	c.stmts[m.Name] = st
	c.send(&pgproto3.ParseComplete{})
	return nil
}

// bind serves Bind: parameters are decoded now; the statement runs on
// Execute.
func (c *conn) bind(m *pgproto3.Bind) error {
	st, ok := c.stmts[m.PreparedStatement]
	if !ok {
		return sqlerr.New(pgerrcode.InvalidSQLStatementName, "prepared statement %q does not exist", m.PreparedStatement)
	}
	if m.DestinationPortal == "" {
		delete(c.portals, "")
	} else if _, ok := c.portals[m.DestinationPortal]; ok {
		return sqlerr.New(pgerrcode.DuplicateCursor, "portal %q already exists", m.DestinationPortal)
	}
	if c.tx == txFailed && !st.txEnd {
		return errAborted
	}
	oids := st.params()
	if len(m.Parameters) != len(oids) {
		return sqlerr.New(pgerrcode.ProtocolViolation,
			"bind message supplies %d parameters, but prepared statement %q requires %d",
			len(m.Parameters), m.PreparedStatement, len(oids))
	}
	if n := len(m.ParameterFormatCodes); n > 1 && n != len(oids) {
		return sqlerr.New(pgerrcode.ProtocolViolation,
			"bind message has %d parameter formats but %d parameters", n, len(oids))
	}
	params := make([]any, len(oids))
	for i, src := range m.Parameters {
		var format int16
		switch len(m.ParameterFormatCodes) {
		case 0:
		case 1:
			format = m.ParameterFormatCodes[0]
		default:
			format = m.ParameterFormatCodes[i]
		}
		// The client encodes a parameter as the type it declared; the
		// engine's type applies when it declared none.
		oid := oids[i]
		if i < len(st.declared) && st.declared[i] != 0 {
			oid = st.declared[i]
		}
		v, err := c.enc.decodeParam(i+1, oid, format, src)
		if err != nil {
			return err
		}
		params[i] = v
	}
	if cols := st.columns(); cols != nil {
		if _, err := resultFormats(m.ResultFormatCodes, len(cols)); err != nil {
			return err
		}
	}
	c.portals[m.DestinationPortal] = &portal{stmt: st, params: params, formatCodes: m.ResultFormatCodes}
	c.send(&pgproto3.BindComplete{})
	return nil
}

// describe serves Describe of a statement ('S') or a portal ('P').
func (c *conn) describe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		st, ok := c.stmts[m.Name]
		if !ok {
			return sqlerr.New(pgerrcode.InvalidSQLStatementName, "prepared statement %q does not exist", m.Name)
		}
		oids := st.params()
		if oids == nil {
			oids = []uint32{}
		}
		c.send(&pgproto3.ParameterDescription{ParameterOIDs: oids})
		if cols := st.columns(); cols != nil {
			c.send(rowDescription(cols, nil))
		} else {
			c.send(&pgproto3.NoData{})
		}
		return nil
	case 'P':
		p, ok := c.portals[m.Name]
		if !ok {
			return sqlerr.New(pgerrcode.InvalidCursorName, "portal %q does not exist", m.Name)
		}
		cols := p.stmt.columns()
		if cols == nil {
			c.send(&pgproto3.NoData{})
			return nil
		}
		formats, err := resultFormats(p.formatCodes, len(cols))
		if err != nil {
			return err
		}
		c.send(rowDescription(cols, formats))
		return nil
	}
	return sqlerr.New(pgerrcode.ProtocolViolation, "invalid DESCRIBE message subtype %d", m.ObjectType)
}

// execute serves Execute: the portal's statement runs on the first
// Execute, with the Prepared from Parse (no new planning); its rows go out
// at most MaxRows at a time, PortalSuspended marking that more remain.
func (c *conn) execute(ctx context.Context, m *pgproto3.Execute) error {
	p, ok := c.portals[m.Portal]
	if !ok {
		return sqlerr.New(pgerrcode.InvalidCursorName, "portal %q does not exist", m.Portal)
	}
	st := p.stmt
	if st.prep == nil {
		c.send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	if p.res == nil {
		if c.tx == txFailed && !st.txEnd {
			return errAborted
		}
		res, err := c.exec(ctx, st.prep, p.params)
		if err != nil {
			return &stmtError{err: err, text: st.text, posBase: st.posBase}
		}
		if st.prep.Columns != nil && res.Columns != nil && len(res.Columns) != len(st.prep.Columns) {
			return &stmtError{
				err:  fmt.Errorf("engine returned %d columns for a statement described with %d", len(res.Columns), len(st.prep.Columns)),
				text: st.text,
			}
		}
		p.res = res
		c.noteTag(res.Tag)
	}
	// Encode with the described column types: those are what the client
	// decodes with.
	cols := st.prep.Columns
	if cols == nil {
		cols = p.res.Columns
	}
	formats, err := resultFormats(p.formatCodes, len(cols))
	if err != nil {
		return err
	}
	rows := p.res.Rows[p.next:]
	if m.MaxRows > 0 && uint64(len(rows)) > uint64(m.MaxRows) {
		rows = rows[:m.MaxRows]
	}
	if err := c.sendRows(cols, rows, formats); err != nil {
		var fe *fatalError
		if errors.As(err, &fe) {
			return err
		}
		return &stmtError{err: err, text: st.text}
	}
	p.next += len(rows)
	if p.next < len(p.res.Rows) {
		p.suspended = true
		c.send(&pgproto3.PortalSuspended{})
		return nil
	}
	tag := p.res.Tag
	if p.suspended && strings.HasPrefix(tag, "SELECT ") {
		// After PortalSuspended, PostgreSQL counts the rows of this
		// Execute only.
		tag = fmt.Sprintf("SELECT %d", len(rows))
	}
	c.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	return nil
}

// closeObject serves Close of a statement ('S') or a portal ('P'); closing
// one that does not exist is not an error.
func (c *conn) closeObject(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		delete(c.stmts, m.Name)
	case 'P':
		delete(c.portals, m.Name)
	default:
		return sqlerr.New(pgerrcode.ProtocolViolation, "invalid CLOSE message subtype %d", m.ObjectType)
	}
	c.send(&pgproto3.CloseComplete{})
	return nil
}
