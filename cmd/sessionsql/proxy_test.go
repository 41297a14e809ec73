package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpProxy forwards TCP connections from a listener on 127.0.0.1:0 to a
// target address, and can cut the link: tests put it between the server
// and a dependency (PostgreSQL) to take the dependency away and give it
// back while everything else keeps running.
//
// While cut, every connection open at the cut is closed (both sides) and
// new ones are accepted and closed at once, so a client sees resets and
// EOFs rather than hanging dials. restore forwards again.
type tcpProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool                  // cut and not restored
	conns map[net.Conn]struct{} // both ends of every open pair
	wg    sync.WaitGroup        // the accept loop and each pair's copiers

	accepted, refused, severed atomic.Int64 // connections forwarded, refused while cut, and closed by a cut
}

// startTCPProxy listens on 127.0.0.1:0 and forwards to target until the
// end of the test.
func startTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's listening address, host:port.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// cut closes every forwarded connection and refuses new ones until
// restore.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	p.severed.Add(int64(len(p.conns) / 2))
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore forwards new connections again.
func (p *tcpProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *tcpProxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Logf("proxy %s: accept: %v", p.Addr(), err)
			}
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward dials the target for client c and copies both ways until
// either side ends, then closes both.
func (p *tcpProxy) forward(c net.Conn) {
	defer p.wg.Done()
	if p.isDown() {
		p.refused.Add(1)
		c.Close()
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.t.Logf("proxy %s: dial %s: %v", p.Addr(), p.target, err)
		c.Close()
		return
	}
	// Register under the lock that cut takes, so that a cut between the
	// check above and here cannot miss this pair.
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		p.refused.Add(1)
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	p.accepted.Add(1)

	var once sync.Once
	end := func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, s)
			p.mu.Unlock()
			c.Close()
			s.Close()
		})
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(s, c)
		end()
	}()
	_, _ = io.Copy(c, s)
	end()
}

func (p *tcpProxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}
