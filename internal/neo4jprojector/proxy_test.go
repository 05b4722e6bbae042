package neo4jprojector

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/cim-infra/registry/internal/neo4jtest"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// proxy is a TCP proxy on loopback in front of Neo4j: closing it is a real network fault (open
// connections are cut, new ones refused), reopening it on the same port heals it.
type proxy struct {
	t      testing.TB
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.Reopen()
	t.Cleanup(p.Close)
	return p
}

// Reopen listens again on the proxy's address.
func (p *proxy) Reopen() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listen on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go p.accept(ln)
}

// Close stops listening and cuts every connection.
func (p *proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) accept(ln net.Listener) {
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
		if p.ln != ln { // closed meanwhile
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns[client], p.conns[server] = true, true
		p.mu.Unlock()
		go pipe(client, server)
		go pipe(server, client)
	}
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

func neo4jURI(t testing.TB) string {
	neo4jtest.Driver(t) // skips, or fails in CI, without a Neo4j
	return os.Getenv(neo4jtest.EnvURI)
}

// proxyDriver is a driver to Neo4j through the proxy.
func proxyDriver(t testing.TB, p *proxy) neo4j.DriverWithContext {
	t.Helper()
	auth := neo4j.NoAuth()
	if user := os.Getenv(neo4jtest.EnvUser); user != "" {
		auth = neo4j.BasicAuth(user, os.Getenv(neo4jtest.EnvPassword), "")
	}
	d, err := neo4j.NewDriverWithContext("bolt://"+p.addr, auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}
