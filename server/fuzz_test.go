package server

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzMessageStream feeds arbitrary bytes as a client's message stream
// after a valid startup. The server must neither panic nor hang: once the
// client stops writing, the connection answers and closes within the
// deadline. Interesting inputs go under testdata/fuzz/FuzzMessageStream.
func FuzzMessageStream(f *testing.F) {
	seed := func(msgs ...pgproto3.FrontendMessage) []byte {
		var b []byte
		for _, m := range msgs {
			var err error
			if b, err = m.Encode(b); err != nil {
				f.Fatal(err)
			}
		}
		return b
	}
	f.Add(seed(&pgproto3.Query{String: "SELECT 1::int8; SELECT bad"}))
	f.Add(seed(&pgproto3.Query{String: "SELECT * FROM types"}, &pgproto3.Query{String: ""}))
	f.Add(seed(
		&pgproto3.Parse{Name: "s", Query: "SELECT $1::int8, $2::text", ParameterOIDs: []uint32{20}},
		&pgproto3.Describe{ObjectType: 'S', Name: "s"},
		&pgproto3.Bind{PreparedStatement: "s", ParameterFormatCodes: []int16{1, 0}, Parameters: [][]byte{{0, 0, 0, 0, 0, 0, 0, 1}, []byte("x")}, ResultFormatCodes: []int16{1}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{MaxRows: 1},
		&pgproto3.Execute{},
		&pgproto3.Close{ObjectType: 'P'},
		&pgproto3.Sync{},
	))
	f.Add(seed(&pgproto3.Parse{Query: "SELECT bad"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT panic"}))
	f.Add(seed(&pgproto3.Query{String: "BEGIN; SELECT bad"}, &pgproto3.Query{String: "SELECT 1::int8"}, &pgproto3.Query{String: "ROLLBACK"}))
	f.Add(seed(&pgproto3.Query{String: "SELECT sleep"}))
	f.Add(seed(&pgproto3.Bind{Parameters: [][]byte{nil}}, &pgproto3.Flush{}, &pgproto3.Terminate{}))
	f.Add([]byte("Q\x00\x00\x00\x04"))
	f.Add([]byte("B\x7f\xff\xff\xff"))
	f.Add([]byte("z\x00\x00\x00\x04"))
	f.Add([]byte{})

	ts := startServer(f, Config{MaxStatementBytes: 4096})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, c := rawConnect(t, ts.addr)
		if _, err := c.Write(data); err != nil {
			// The server may close first (a FATAL for garbage); fine.
			return
		}
		// Half-close: the server sees EOF after the data, answers what it
		// can, and must then close the connection.
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the server neither answered nor closed within 10s (input %q)", data)
			}
		}
	})
}
