package server

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/datadriven"
	"github.com/jackc/pgx/v5/pgproto3"
)

var (
	pgtestAddr = flag.String("addr", "", "run testdata/pgtest against the server at this address (e.g. a real PostgreSQL, 127.0.0.1:5432) instead of a test server")
	pgtestUser = flag.String("user", "postgres", "user (and database) for -addr")
)

// TestPGTest runs the wire-level scripts in testdata/pgtest, in the spirit
// of cockroach's pkg/testutils/pgtest. Each file gets a fresh connection.
// Commands:
//
//	only sessionsql       skip this file under -addr (output differs from PostgreSQL)
//	sslrequest            send SSLRequest; output: the one-byte answer
//	gssencrequest         send GSSEncRequest; output: the one-byte answer
//	startup               send StartupMessage; output: messages up to ReadyForQuery
//	send                  one message a line: Type [JSON body]; no output
//	send-raw              hex bytes written as they are; no output
//	until [ignore=A,B]    read until the listed types are seen in order
//	                      (none: until the server closes); output: one JSON
//	                      message a line, EOF if the connection closed
//
// A send or until before any startup does a startup silently. Messages
// whose content is random (BackendKeyData) print without it. With -addr,
// the files not marked "only sessionsql" run against that server, which
// proves that what they expect is what PostgreSQL does:
//
//	go test ./server -run TestPGTest -addr 127.0.0.1:5432 -user postgres
func TestPGTest(t *testing.T) {
	datadriven.Walk(t, "testdata/pgtest", func(t *testing.T, path string) {
		addr, user := *pgtestAddr, *pgtestUser
		if addr == "" {
			ts := startServer(t, Config{})
			addr, user = ts.addr, "tester"
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p := &pgtestConn{t: t, c: c, fe: pgproto3.NewFrontend(c, c), user: user}
		datadriven.RunTest(t, path, p.run)
	})
}

type pgtestConn struct {
	t       *testing.T
	c       net.Conn
	fe      *pgproto3.Frontend
	user    string
	started bool
}

func (p *pgtestConn) run(t *testing.T, d *datadriven.TestData) string {
	_ = p.c.SetDeadline(time.Now().Add(10 * time.Second))
	switch d.Cmd {
	case "only":
		if d.HasArg("sessionsql") && *pgtestAddr != "" {
			t.Skip("only against sessionsql")
		}
		return ""
	case "sslrequest", "gssencrequest":
		var msg pgproto3.FrontendMessage = &pgproto3.SSLRequest{}
		if d.Cmd == "gssencrequest" {
			msg = &pgproto3.GSSEncRequest{}
		}
		p.fe.Send(msg)
		if err := p.fe.Flush(); err != nil {
			d.Fatalf(t, "send: %v", err)
		}
		// Read the answer byte from the socket: the frontend has buffered
		// nothing yet, as nothing else was read before startup.
		b := make([]byte, 1)
		if _, err := io.ReadFull(p.c, b); err != nil {
			d.Fatalf(t, "read: %v", err)
		}
		return string(b) + "\n"
	case "startup":
		p.started = true
		p.startup(t, d)
		return p.until(t, d, []string{"ReadyForQuery"}, nil)
	case "send":
		p.ensureStarted(t, d)
		for _, line := range strings.Split(d.Input, "\n") {
			typ, body, _ := strings.Cut(line, " ")
			msg := frontendMessage(t, d, typ)
			if body != "" {
				if err := json.Unmarshal([]byte(body), msg); err != nil {
					d.Fatalf(t, "%s: %v", line, err)
				}
			}
			p.fe.Send(msg)
		}
		if err := p.fe.Flush(); err != nil {
			d.Fatalf(t, "send: %v", err)
		}
		return ""
	case "send-raw":
		p.ensureStarted(t, d)
		b, err := hex.DecodeString(strings.Join(strings.Fields(d.Input), ""))
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		if _, err := p.c.Write(b); err != nil {
			d.Fatalf(t, "write: %v", err)
		}
		return ""
	case "until":
		p.ensureStarted(t, d)
		var types []string
		if d.Input != "" {
			types = strings.Split(d.Input, "\n")
		}
		ignore := map[string]bool{}
		for _, a := range d.CmdArgs {
			switch a.Key {
			case "ignore":
				for _, v := range a.Vals {
					ignore[v] = true
				}
			default:
				d.Fatalf(t, "unknown argument %s", a.Key)
			}
		}
		return p.until(t, d, types, ignore)
	}
	d.Fatalf(t, "unknown command %s", d.Cmd)
	return ""
}

func (p *pgtestConn) startup(t *testing.T, d *datadriven.TestData) {
	p.fe.Send(&pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{
			"user":             p.user,
			"database":         p.user,
			"application_name": "pgtest",
			"TimeZone":         "UTC",
		},
	})
	if err := p.fe.Flush(); err != nil {
		d.Fatalf(t, "send startup: %v", err)
	}
}

func (p *pgtestConn) ensureStarted(t *testing.T, d *datadriven.TestData) {
	if p.started {
		return
	}
	p.started = true
	p.startup(t, d)
	p.until(t, d, []string{"ReadyForQuery"}, nil)
}

// until reads messages until the types have been seen in order (or, with
// none, until the connection closes) and prints them as JSON lines.
func (p *pgtestConn) until(t *testing.T, d *datadriven.TestData, types []string, ignore map[string]bool) string {
	var sb strings.Builder
	toEOF := len(types) == 0
	for len(types) > 0 || toEOF {
		msg, err := p.fe.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
				sb.WriteString("EOF\n")
				break
			}
			d.Fatalf(t, "receive: %v (still waiting for %v)", err, types)
		}
		typ := strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3.")
		if len(types) > 0 && typ == types[0] {
			types = types[1:]
		}
		if ignore[typ] {
			continue
		}
		sb.WriteString(messageJSON(t, d, msg))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// messageJSON prints msg; errors print their user-visible fields only, and
// BackendKeyData without its random key.
func messageJSON(t *testing.T, d *datadriven.TestData, msg pgproto3.BackendMessage) string {
	var v any = msg
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		v = struct {
			Type     string
			Severity string
			Code     string
			Message  string
			Detail   string `json:",omitempty"`
			Hint     string `json:",omitempty"`
			Position int32  `json:",omitempty"`
		}{"ErrorResponse", m.Severity, m.Code, m.Message, m.Detail, m.Hint, m.Position}
	case *pgproto3.BackendKeyData:
		v = struct{ Type string }{"BackendKeyData"}
	case *pgproto3.DataRow:
		// pgproto3 prints bytes >= 0x80 of binary values as text, which
		// loses them; print anything that is not clean UTF-8 as hex.
		values := make([]map[string]string, len(m.Values))
		for i, b := range m.Values {
			switch {
			case b == nil:
			case utf8.Valid(b) && !slices.ContainsFunc(b, func(c byte) bool { return c < 0x20 }):
				values[i] = map[string]string{"text": string(b)}
			default:
				values[i] = map[string]string{"binary": hex.EncodeToString(b)}
			}
		}
		v = struct {
			Type   string
			Values []map[string]string
		}{"DataRow", values}
	}
	b, err := json.Marshal(v)
	if err != nil {
		d.Fatalf(t, "marshal %T: %v", msg, err)
	}
	return string(b)
}

func frontendMessage(t *testing.T, d *datadriven.TestData, typ string) pgproto3.FrontendMessage {
	switch typ {
	case "Bind":
		return &pgproto3.Bind{}
	case "Close":
		return &pgproto3.Close{}
	case "Describe":
		return &pgproto3.Describe{}
	case "Execute":
		return &pgproto3.Execute{}
	case "Flush":
		return &pgproto3.Flush{}
	case "FunctionCall":
		return &pgproto3.FunctionCall{}
	case "Parse":
		return &pgproto3.Parse{}
	case "Query":
		return &pgproto3.Query{}
	case "Sync":
		return &pgproto3.Sync{}
	case "Terminate":
		return &pgproto3.Terminate{}
	case "CopyData":
		return &pgproto3.CopyData{}
	}
	d.Fatalf(t, "unknown message type %q", typ)
	return nil
}
