// Package sqltypes maps between the SQL type names users write, the Arrow
// data types the engine computes with, and PostgreSQL type OIDs. It is a
// leaf that imports only Arrow.
//
// The engine has five column types. Every integer type is BIGINT (int64),
// every floating or numeric type is DOUBLE PRECISION (float64), every
// character type is TEXT, BOOLEAN is bool, and TIMESTAMP / TIMESTAMPTZ are
// milliseconds since the Unix epoch in UTC (arrow Timestamp(ms); TimeZone
// "" for TIMESTAMP and "UTC" for TIMESTAMPTZ).
package sqltypes

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// The engine's column types.
var (
	Int64       arrow.DataType = arrow.PrimitiveTypes.Int64
	Float64     arrow.DataType = arrow.PrimitiveTypes.Float64
	String      arrow.DataType = arrow.BinaryTypes.String
	Bool        arrow.DataType = arrow.FixedWidthTypes.Boolean
	Timestamp   arrow.DataType = &arrow.TimestampType{Unit: arrow.Millisecond}
	TimestampTZ arrow.DataType = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	// Null is the type of an untyped NULL literal before it is resolved.
	Null arrow.DataType = arrow.Null
)

// PostgreSQL type OIDs of the engine's types.
const (
	OIDBool        uint32 = 16
	OIDInt8        uint32 = 20
	OIDText        uint32 = 25
	OIDFloat8      uint32 = 701
	OIDTimestamp   uint32 = 1114
	OIDTimestampTZ uint32 = 1184
	OIDUnknown     uint32 = 705
)

// OIDs of other PostgreSQL types that clients declare for parameters; the
// engine reads them as one of its own types (FromOID).
const (
	OIDName    uint32 = 19
	OIDInt2    uint32 = 21
	OIDInt4    uint32 = 23
	OIDJSON    uint32 = 114
	OIDFloat4  uint32 = 700
	OIDBPChar  uint32 = 1042
	OIDVarchar uint32 = 1043
	OIDDate    uint32 = 1082
	OIDNumeric uint32 = 1700
)

// FromName returns the type of a SQL type name as a user writes it
// (case-insensitive, with or without a length such as VARCHAR(20)).
func FromName(name string) (arrow.DataType, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if i := strings.IndexByte(n, '('); i >= 0 {
		n = strings.TrimSpace(n[:i])
	}
	n = strings.Join(strings.Fields(n), " ")
	switch n {
	case "BIGINT", "INT", "INTEGER", "SMALLINT", "TINYINT", "INT8", "INT4", "INT2", "SERIAL", "BIGSERIAL":
		return Int64, nil
	case "DOUBLE", "DOUBLE PRECISION", "FLOAT", "FLOAT8", "FLOAT4", "REAL", "NUMERIC", "DECIMAL":
		return Float64, nil
	case "VARCHAR", "CHARACTER VARYING", "CHAR", "CHARACTER", "TEXT", "STRING":
		return String, nil
	case "BOOLEAN", "BOOL":
		return Bool, nil
	case "TIMESTAMP", "DATETIME", "TIMESTAMP WITHOUT TIME ZONE":
		return Timestamp, nil
	case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return TimestampTZ, nil
	}
	return nil, fmt.Errorf("type %q is not supported", strings.ToLower(name))
}

// Name returns the canonical SQL name of t, as DESCRIBE and the sink's
// CREATE TABLE print it.
func Name(t arrow.DataType) string {
	switch {
	case arrow.TypeEqual(t, Int64):
		return "BIGINT"
	case arrow.TypeEqual(t, Float64):
		return "DOUBLE PRECISION"
	case arrow.TypeEqual(t, String):
		return "TEXT"
	case arrow.TypeEqual(t, Bool):
		return "BOOLEAN"
	case arrow.TypeEqual(t, Timestamp):
		return "TIMESTAMP"
	case arrow.TypeEqual(t, TimestampTZ):
		return "TIMESTAMPTZ"
	case t.ID() == arrow.NULL:
		return "NULL"
	}
	return t.String()
}

// OID returns the PostgreSQL type OID of t (OIDUnknown for NULL).
func OID(t arrow.DataType) uint32 {
	switch {
	case arrow.TypeEqual(t, Int64):
		return OIDInt8
	case arrow.TypeEqual(t, Float64):
		return OIDFloat8
	case arrow.TypeEqual(t, String):
		return OIDText
	case arrow.TypeEqual(t, Bool):
		return OIDBool
	case arrow.TypeEqual(t, Timestamp):
		return OIDTimestamp
	case arrow.TypeEqual(t, TimestampTZ):
		return OIDTimestampTZ
	}
	return OIDUnknown
}

// FormatType is PostgreSQL's name of the type oid, as format_type and its
// error messages print it ("double precision", "timestamp with time
// zone"); "oid N" for a type this package does not know.
func FormatType(oid uint32) string {
	switch oid {
	case OIDInt2:
		return "smallint"
	case OIDInt4:
		return "integer"
	case OIDInt8:
		return "bigint"
	case OIDFloat4:
		return "real"
	case OIDFloat8:
		return "double precision"
	case OIDNumeric:
		return "numeric"
	case OIDText:
		return "text"
	case OIDBool:
		return "boolean"
	case OIDTimestamp:
		return "timestamp without time zone"
	case OIDTimestampTZ:
		return "timestamp with time zone"
	case OIDDate:
		return "date"
	}
	return fmt.Sprintf("oid %d", oid)
}

// FromOID returns the engine type that holds values of the PostgreSQL
// type oid (a parameter type a client declared); ok is false for OIDs the
// engine does not read, including 0 (unspecified).
func FromOID(oid uint32) (t arrow.DataType, ok bool) {
	switch oid {
	case OIDInt8, OIDInt2, OIDInt4:
		return Int64, true
	case OIDFloat8, OIDFloat4, OIDNumeric:
		return Float64, true
	case OIDText, OIDVarchar, OIDBPChar, OIDName:
		return String, true
	case OIDBool:
		return Bool, true
	case OIDTimestamp:
		return Timestamp, true
	case OIDTimestampTZ:
		return TimestampTZ, true
	}
	return nil, false
}

// IsTimestamp reports whether t is TIMESTAMP or TIMESTAMPTZ.
func IsTimestamp(t arrow.DataType) bool { return t.ID() == arrow.TIMESTAMP }

// IsNumeric reports whether t is BIGINT or DOUBLE PRECISION.
func IsNumeric(t arrow.DataType) bool {
	return t.ID() == arrow.INT64 || t.ID() == arrow.FLOAT64
}
