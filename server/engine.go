package server

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
)

// Engine is what the wire server runs statements against. The planner
// implements it; the server knows nothing of SQL beyond splitting a simple
// query into statements.
type Engine interface {
	// NewSession starts the engine side of one client connection.
	NewSession(user, database string) Session
}

// Session is the engine side of one connection. The server calls it from
// the connection's goroutine only, one call at a time.
type Session interface {
	// Prepare analyses one statement without running it. text may hold
	// parameter markers $1, $2, .... paramOIDs are the types the client
	// declared in Parse (0 = unspecified), one per marker or fewer.
	Prepare(ctx context.Context, text string, paramOIDs []uint32) (*Prepared, error)
	// Execute runs one statement. params are the parameter values decoded
	// to Go values (nil, int64, float64, string, bool, time.Time), one per
	// entry of Prepared.Params. ctx is cancelled by a CancelRequest.
	Execute(ctx context.Context, p *Prepared, params []any) (*Result, error)
	// Close releases the session; it is called once, when the connection ends.
	Close()
}

// Prepared is an analysed statement.
type Prepared struct {
	Text string
	// Params are the PostgreSQL type OIDs of $1..$n.
	Params []uint32
	// Columns describe the rows Execute returns; nil for a statement that
	// returns no rows (the server then answers Describe with NoData).
	Columns []Column
	// State is the engine's own data for Execute; the server does not look
	// at it.
	State any
}

// Column is one result column.
type Column struct {
	Name string
	Type arrow.DataType // one of sql/sqltypes' types; OID from sqltypes.OID
}

// Result is what Execute returns.
type Result struct {
	Columns []Column // nil when the statement returns no rows
	// Rows hold Go values: nil, int64, float64, string, bool, time.Time
	// (TIMESTAMP values are UTC wall times).
	Rows [][]any
	// Tag is the CommandComplete tag, e.g. "SELECT 3", "CREATE SOURCE",
	// "INSERT 0 2".
	Tag string
}
