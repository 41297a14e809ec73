/*
Package server is sessionsql's front door: the server side of the
PostgreSQL wire protocol (version 3.0), built on pgx's pgproto3.Backend. It
owns sockets, the startup handshake, cancel keys, the simple and extended
query protocols, result encoding (text and binary) and the mapping of
errors to ErrorResponse. It knows nothing of SQL beyond cutting a simple
query into statements (sql.Split): an Engine (engine.go; the planner
implements it) prepares and runs every statement.

# Goroutines

Serve runs the accept loop on the caller's goroutine and one goroutine per
connection, all counted in a WaitGroup. Each established connection has a
second goroutine, the reader, owned by the connection goroutine, which
waits for it before it returns:

	client ──► reader: be.Receive, copy ──► chan (16 messages) ──► connection goroutine
	                                                               ├─ Session.Prepare / Execute
	client ◄──────────────── be.Send / be.Flush ◄──────────────────┘

The reader never blocks on execution (cockroach pkg/sql/pgwire/doc.go): it
keeps reading while a statement runs, so a client that hangs up cancels its
statement at once. (So does a client that half-closes its socket after
sending: the statements still queued then fail and the connection closes,
as nobody is known to be listening.) A CancelRequest arrives on a new connection; Server.cancel
finds the target by its BackendKeyData (process id and secret) and cancels
the context of the statement it is running, if any (as in PostgreSQL, a
cancel that arrives between statements does nothing). Only the connection
goroutine calls the Session and writes to the socket; the one field shared
with other goroutines, the running statement's cancel function, is under
conn.mu. Lock order: Server.mu, then conn.mu (Server.cancel releases the
first before taking the second).

Shutdown: when Serve's context is done, Serve closes the listener; every
connection's read deadline is set to now (unblocking a reader or a pending
startup read) and its write deadline a little later; statement contexts
are cancelled; each connection goroutine sends FATAL 57P01 admin_shutdown,
closes its socket, waits for its reader and closes its Session. Serve
returns when all of them have.

# Connection states

	startup ──SSLRequest──► 'S', TLS handshake ──► startup (Config.TLS set)
	startup ──SSLRequest/GSSEncRequest──► 'N' ──► startup
	startup ──CancelRequest──► cancel the target's statement, close
	startup ──StartupMessage──► (no TLS and RequireTLS: FATAL 28000, close)
	        (over MaxConns: FATAL 53300, close)
	        [SCRAM-SHA-256 exchange, when Config.Credentials is set]
	        AuthenticationOk, ParameterStatus×n, BackendKeyData, ReadyForQuery 'I'
	ready ──Query──► per statement: [RowDescription] DataRow* CommandComplete
	                 | EmptyQueryResponse | ErrorResponse (rest skipped); ReadyForQuery
	ready ──Parse/Bind/Describe/Execute/Close──► their answers, buffered
	      ──error──► ErrorResponse, then discard everything up to Sync
	      ──Sync──► ReadyForQuery (ends the implicit transaction)
	      ──Flush──► write what is buffered
	      ──Terminate, EOF──► close

# Security

Config.TLS (a *tls.Config with a certificate) turns TLS on: an SSLRequest
is answered 'S' and the connection upgraded before the StartupMessage, as
PostgreSQL does; clear-text bytes sent after the SSLRequest and before the
handshake are a protocol violation (CVE-2021-23214). Without it the
answer is 'N', so clients with sslmode=prefer go on in clear text and
sslmode=require gives up. GSS encryption is always declined; direct TLS
(sslnegotiation=direct) is not offered. Config.RequireTLS refuses a
StartupMessage that did not come through TLS with FATAL 28000.

Config.Credentials (NewCredentials, from user → password; ParseUsers reads
a "user:password" file) turns on SCRAM-SHA-256 (RFC 5802, RFC 7677) as
PostgreSQL speaks it: AuthenticationSASL offering only "SCRAM-SHA-256" (no
channel binding), SASLInitialResponse, AuthenticationSASLContinue,
SASLResponse, AuthenticationSASLFinal, AuthenticationOk. Only verifiers
are kept (random 16-byte salt, 4096 iterations, StoredKey and ServerKey);
passwords are neither stored nor logged. The user is the startup packet's;
the SCRAM user name is ignored. A wrong password and an unknown user both
get FATAL 28P01 "password authentication failed for user" after the same
exchange (an unknown user is given a mock salt, stable per name), so the
two cannot be told apart; the server log says which. A malformed
exchange is FATAL 08P01. The exchange falls under the startup timeout.
Without Credentials every user is accepted (trust), and Serve says so once
in the log (at Warn when the listener is not on loopback).

# Extended protocol

Parse calls Session.Prepare once, with the parameter OIDs the client
declared, and keeps the Prepared under the statement's name ("" is the
unnamed statement, replaced by the next Parse and dropped by a simple
Query). Bind decodes the parameters (text or binary, by the declared OID
when the client gave one, else by Prepared.Params) into nil, int64,
float64, string, bool or time.Time, and makes a portal. Describe answers
ParameterDescription and RowDescription (or NoData) from the Prepared, and
for a portal with its result formats. The first Execute of a portal calls
Session.Execute with the stored Prepared (no planning again) and keeps the
Result; with a row limit, Execute sends that many rows and PortalSuspended,
and the next Execute goes on from there. Portals end with the implicit
transaction (at Sync or a simple Query outside a transaction block).

# Transaction status

The engine runs BEGIN, COMMIT and ROLLBACK; the server follows them by
their command tags to report ReadyForQuery's status: "BEGIN" or "START
TRANSACTION" → 'T', "COMMIT" or "ROLLBACK" → 'I'. An error inside a block
makes it 'E'; then, as in PostgreSQL, every statement except ROLLBACK,
ABORT, COMMIT and END fails with 25P02 in_failed_sql_transaction without
reaching the engine.

# Errors

Every error a client sees is an ErrorResponse with a SQLSTATE:

  - an error with a *sqlerr.Error in its chain: its code, message, detail,
    hint and position; the position, 1-based characters within the
    statement, is shifted by the characters before the statement in the
    query string, so it points into the text the client sent;
  - context.Canceled or DeadlineExceeded: 57014 query_canceled, "canceling
    statement due to user request";
  - anything else, and a panic in the engine (recovered, logged with its
    stack): XX000 internal_error, logged at Error with the whole chain;
  - limits: a query over MaxStatementBytes 54000 program_limit_exceeded (a
    message over four times that is FATAL), more than MaxConns clients
    53300 too_many_connections (FATAL);
  - a malformed or unexpected message: FATAL 08P01 protocol_violation, and
    the connection closes.

Clients hanging up (EOF, reset) are logged at Debug, not as errors.

# Result encoding

Text format prints values as PostgreSQL does with DateStyle ISO and
TimeZone UTC: bool t/f; float8 shortest round-trip digits, exponent
notation outside [1e-4, 1e15), Infinity, -Infinity, NaN; timestamp
"2024-01-02 03:04:05.678"; timestamptz "2024-01-02 03:04:05.678+00".
Binary format is pgtype's encoding for the column's OID.
*/
package server
