package main

// Helpers for tests that run the real binary as a child process: build
// it, start `sessionsql serve`, kill it with SIGKILL, start it again over
// the same data directory, addresses and sink.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// buildBinary builds ./cmd/sessionsql from the module root into a
// temporary directory and returns the executable's path.
func buildBinary(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v (the test runs in cmd/sessionsql)", err)
	}
	bin := filepath.Join(t.TempDir(), "sessionsql")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sessionsql")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sessionsql: %v\n%s", err, out)
	}
	t.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// freeAddr returns a 127.0.0.1 address with a port nobody listened on a
// moment ago. A process started with it keeps it across restarts, so
// clients find the restarted server where the killed one was.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveProc is `sessionsql serve` run as a child process, at most one at a
// time, always with the same arguments: so a restart after kill finds the
// same data directory, ports and sink.
type serveProc struct {
	t       *testing.T
	name    string // in log messages
	bin     string
	args    []string
	addr    string // the wire listener
	natsURL string // the embedded NATS server
	logPath string // stdout and stderr of every start, appended

	cmd     *exec.Cmd     // the running process, nil when none
	exited  chan struct{} // closed once cmd has exited
	waitErr error         // cmd.Wait's result; read after exited is closed
	starts  int
}

// newServeProc prepares a serve process over dataDir writing results to
// the PostgreSQL sink postgres, with flags added to the addresses; it
// starts nothing. At the end of the test a running process is killed, and
// if the test failed the tail of its log is printed.
func newServeProc(t *testing.T, name, bin, dataDir, postgres string, flags []string) *serveProc {
	t.Helper()
	addr, natsAddr := freeAddr(t), freeAddr(t)
	p := &serveProc{t: t, name: name, bin: bin, addr: addr, natsURL: "nats://" + natsAddr,
		logPath: filepath.Join(t.TempDir(), name+".log")}
	p.args = append([]string{"serve", "--data-dir", dataDir, "--listen", addr, "--nats-listen", natsAddr,
		"--postgres", postgres}, flags...)
	t.Cleanup(func() {
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.cmd = nil
		}
		if t.Failed() {
			t.Logf("last lines of the %s server's log %s:\n%s", p.name, p.logPath, p.logTail(60))
		}
	})
	return p
}

// start starts the process and waits until it accepts a wire connection;
// it returns how long that took.
func (p *serveProc) start() time.Duration {
	t := p.t
	t.Helper()
	if p.cmd != nil {
		t.Fatalf("%s server: start while one is running", p.name)
	}
	p.starts++
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== start %d: %s %s\n", p.starts, p.bin, strings.Join(p.args, " "))
	begin := time.Now()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close() // the child has its own descriptor
	if err != nil {
		t.Fatalf("%s server: %v", p.name, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		p.waitErr = cmd.Wait()
		close(exited)
	}(p.exited)

	deadline := begin.Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, p.dsn())
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return time.Since(begin)
		}
		select {
		case <-p.exited:
			p.cmd = nil
			t.Fatalf("%s server exited before it accepted a connection: %v", p.name, p.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s server: no wire connection after 30s: %v", p.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to go. A process that has
// already exited on its own fails the test.
func (p *serveProc) kill() {
	t := p.t
	t.Helper()
	if p.cmd == nil {
		t.Fatalf("%s server: kill with none running", p.name)
	}
	select {
	case <-p.exited:
		p.cmd = nil
		t.Fatalf("%s server exited by itself: %v", p.name, p.waitErr)
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("%s server: kill: %v", p.name, err)
	}
	<-p.exited
	p.cmd = nil
}

func (p *serveProc) dsn() string {
	return "postgres://tester@" + p.addr + "/sessionsql?sslmode=disable&connect_timeout=2"
}

// connect opens a wire connection, closed at the end of the test.
func (p *serveProc) connect() *pgx.Conn {
	t := p.t
	t.Helper()
	conn, err := pgx.Connect(context.Background(), p.dsn())
	if err != nil {
		t.Fatalf("%s server: %v", p.name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// logTail returns the last n lines of the process's log.
func (p *serveProc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
