// Package sqlerr is the error type every layer uses to tell a client what
// went wrong: a PostgreSQL SQLSTATE, a message, and for errors in SQL text
// the 1-based character position of the offending token.
//
// It is a leaf: anyone may import it, including exec/ and windows/.
// The server finds the code by walking the wrap chain with errors.As, so
// wrapping an *Error with fmt.Errorf("...: %w", err) keeps its code.
package sqlerr

import (
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
)

// Error is an error with a SQLSTATE. Message is lower-case with no final
// period and quotes the name the user typed.
type Error struct {
	Code     string // SQLSTATE, one of pgerrcode's constants
	Message  string
	Detail   string
	Hint     string
	Position int // 1-based character (rune) offset into the statement text; 0 if none
}

// Error implements error.
func (e *Error) Error() string {
	if e.Position > 0 {
		return fmt.Sprintf("%s (SQLSTATE %s, position %d)", e.Message, e.Code, e.Position)
	}
	return fmt.Sprintf("%s (SQLSTATE %s)", e.Message, e.Code)
}

// New returns an error with code and a formatted message and no position.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// At returns an error with code, a position (1-based characters, 0 for
// none) and a formatted message.
func At(code string, pos int, format string, args ...any) *Error {
	return &Error{Code: code, Position: pos, Message: fmt.Sprintf(format, args...)}
}

// Syntax returns a 42601 syntax error at pos.
func Syntax(pos int, format string, args ...any) *Error {
	return At(pgerrcode.SyntaxError, pos, format, args...)
}

// WithHint returns e with Hint set; it modifies and returns e.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hint = fmt.Sprintf(format, args...)
	return e
}

// WithDetail returns e with Detail set; it modifies and returns e.
func (e *Error) WithDetail(format string, args ...any) *Error {
	e.Detail = fmt.Sprintf(format, args...)
	return e
}

// As finds the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Code returns the SQLSTATE of the first *Error in err's chain, or
// pgerrcode.InternalError when there is none.
func Code(err error) string {
	if e, ok := As(err); ok {
		return e.Code
	}
	return pgerrcode.InternalError
}

// RunePos converts a 0-based byte offset in text into the 1-based character
// position PostgreSQL reports. Offsets outside text are clamped.
func RunePos(text string, byteOff int) int {
	if byteOff < 0 {
		byteOff = 0
	}
	if byteOff > len(text) {
		byteOff = len(text)
	}
	n := 0
	for range text[:byteOff] {
		n++
	}
	return n + 1
}
