package neo4jprojector

import (
	"context"
	"os"
	"testing"

	"github.com/cim-infra/registry/internal/neo4jtest"
	"github.com/cim-infra/registry/internal/tcpproxy"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// newProxy is a TCP proxy on loopback in front of Neo4j: Down is a real network fault (open
// connections are cut, new ones refused), Up on the same address heals it.
func newProxy(t testing.TB, target string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func neo4jURI(t testing.TB) string {
	neo4jtest.Driver(t) // skips, or fails in CI, without a Neo4j
	return os.Getenv(neo4jtest.EnvURI)
}

// proxyDriver is a driver to Neo4j through the proxy.
func proxyDriver(t testing.TB, p *tcpproxy.Proxy) neo4j.DriverWithContext {
	t.Helper()
	auth := neo4j.NoAuth()
	if user := os.Getenv(neo4jtest.EnvUser); user != "" {
		auth = neo4j.BasicAuth(user, os.Getenv(neo4jtest.EnvPassword), "")
	}
	d, err := neo4j.NewDriverWithContext("bolt://"+p.Addr(), auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}
