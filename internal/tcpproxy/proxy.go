// Package tcpproxy is a TCP proxy on loopback in front of one server, for tests that need a real
// network fault between a client and that server: bytes that stop moving while every connection
// stays open (Pause), connections cut (Cut), or a server gone and back on the same address (Down,
// Up).
package tcpproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/cim-infra/registry/internal/freeport"
)

// ErrClosed is returned by Up once the proxy is closed.
var ErrClosed = errors.New("tcpproxy: closed")

// Proxy forwards every connection it accepts to its target. Its methods are safe for concurrent
// use.
type Proxy struct {
	target string

	mu     sync.Mutex
	addr   string       // where the proxy listens, kept across Down and Up
	ln     net.Listener // nil while down
	paused bool
	resume chan struct{} // closed while not paused
	conns  map[net.Conn]struct{}
	closed bool
}

// New listens on a free loopback port and forwards every connection to target. The port is
// outside the kernel's ephemeral range (internal/freeport), so that no outgoing connection takes
// it while the proxy is down.
func New(target string) (*Proxy, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: %w", err)
	}
	p := &Proxy{target: target, addr: addr, conns: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	close(p.resume)
	if err := p.Up(); err != nil {
		return nil, err
	}
	return p, nil
}

// Addr is the proxy's host:port, the same for the proxy's whole life.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Pause stops forwarding without closing anything (a process stopped, or a network that drops
// everything while TCP keeps the connection): bytes already read wait, nothing more is read.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		p.paused = true
		p.resume = make(chan struct{})
	}
}

// Resume forwards again what waited and what follows.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resume)
	}
}

// Cut closes every open connection; new ones are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut()
}

// Down stops listening and cuts every connection, as a server that went away: connections are
// refused until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopListening()
	p.cut()
}

// Up listens again on the proxy's address after Down; it does nothing while the proxy is up.
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("tcpproxy: listen on %s: %w", p.addr, err)
	}
	p.ln = ln
	go p.accept(ln)
	return nil
}

// Close stops listening and cuts every connection, for good.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.stopListening()
	p.cut()
	p.mu.Unlock()
	p.Resume() // pipes waiting at the gate see their connections closed and end
}

func (p *Proxy) stopListening() {
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

func (p *Proxy) cut() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // down or closed meanwhile
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

// gate blocks while the proxy is paused.
func (p *Proxy) gate() {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	<-ch
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		p.gate()
		n, err := src.Read(buf)
		if n > 0 {
			p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
