package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// Severities of an ErrorResponse. ERROR ends the statement; FATAL ends the
// connection.
const (
	severityError = "ERROR"
	severityFatal = "FATAL"
)

// panicError is a panic recovered from the engine, carried as an error so
// that the statement fails like any other. It has no SQLSTATE and so
// becomes internal_error.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// fatalError ends the connection: the client is gone or the stream cannot
// be trusted any more. Everything else a handler returns fails only the
// statement.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// errCancelRequested is the cause given to a statement's context when a
// CancelRequest for its connection arrives.
var errCancelRequested = errors.New("cancel request")

// errorResponse turns err into the ErrorResponse a client sees. The code
// comes from the first *sqlerr.Error in the chain; context cancellation
// becomes query_canceled; anything else is internal_error. posBase is the
// number of characters of the query string before the statement the error
// belongs to, so that a position inside the statement becomes a position
// inside the query string, as PostgreSQL reports it.
func errorResponse(err error, posBase int) *pgproto3.ErrorResponse {
	resp := &pgproto3.ErrorResponse{Severity: severityError, SeverityUnlocalized: severityError}
	if e, ok := sqlerr.As(err); ok {
		resp.Code = e.Code
		resp.Message = e.Message
		resp.Detail = e.Detail
		resp.Hint = e.Hint
		if e.Position > 0 {
			resp.Position = int32(posBase + e.Position)
		}
		return resp
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		resp.Code = pgerrcode.QueryCanceled
		resp.Message = "canceling statement due to user request"
		return resp
	}
	resp.Code = pgerrcode.InternalError
	resp.Message = err.Error()
	return resp
}

// isInternal reports whether err carries no SQLSTATE of its own, so that
// the server logs it: a user sees only "internal error".
func isInternal(err error) bool {
	if _, ok := sqlerr.As(err); ok {
		return false
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// fatal returns a FATAL ErrorResponse, after which the server closes the
// connection.
func fatal(code, format string, args ...any) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{
		Severity:            severityFatal,
		SeverityUnlocalized: severityFatal,
		Code:                code,
		Message:             fmt.Sprintf(format, args...),
	}
}

// isNormalClosure reports whether err is the client going away (EOF, reset,
// broken pipe, a closed or timed-out socket) rather than a fault: those are
// logged at Debug.
func isNormalClosure(err error) bool {
	if err == nil {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
