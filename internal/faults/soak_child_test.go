package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/freeport"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/nats-io/nats-server/v2/server"
)

// The soak runs every part of the system in a process of its own, so that each one's heap,
// goroutines and descriptors are its own: this test binary, started again with envSoakChild
// naming the part. A child reads commands on stdin and answers on file descriptor 3, one JSON
// line each; it stops gracefully when its stdin closes (also when the test process dies).
const envSoakChild = "CIM_SOAK_CHILD"

// Parts a soak child can run.
const (
	partNATS     = "nats"
	partCommand  = commandservice.ServiceName
	partMetrics  = metricsprojector.ServiceName
	partNeo4j    = neo4jprojector.ServiceName
	soakNATSSize = 3
)

// childReport is one line a child writes: the URL when its NATS cluster is ready, or a sample.
type childReport struct {
	URL        string `json:"url,omitempty"`
	HeapInuse  uint64 `json:"heap_inuse"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	Err        string `json:"err,omitempty"`
}

func TestMain(m *testing.M) {
	if part := os.Getenv(envSoakChild); part != "" {
		os.Exit(runSoakChild(part, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runSoakChild runs one part until its stdin closes and returns the exit code.
func runSoakChild(part string, args []string) int {
	// A finer heap profile than the default one sample per 512 KiB, to tell what grows.
	runtime.MemProfileRate = 16 << 10
	out := os.NewFile(3, "soak-reports")
	var mu sync.Mutex
	report := func(r childReport) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(r)
		_, _ = out.Write(append(b, '\n'))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go serveCommands(os.Stdin, report, cancel)

	switch part {
	case partNATS:
		return serveNATS(ctx, args, report)
	case partCommand:
		return servicemain.New(commandservice.ServiceName, commandservice.Run).Run(ctx, args, os.Stderr)
	case partMetrics:
		return servicemain.New(metricsprojector.ServiceName, metricsprojector.Run).Run(ctx, args, os.Stderr)
	case partNeo4j:
		return servicemain.New(neo4jprojector.ServiceName, neo4jprojector.Run).Run(ctx, args, os.Stderr)
	}
	fmt.Fprintf(os.Stderr, "soak child: unknown part %q\n", part)
	return 2
}

// serveCommands answers the parent's commands until in closes, then calls stop:
// "sample" reports the heap in use after a collection, goroutines and open descriptors;
// "profile PATH" writes a heap profile (after a collection) to PATH and reports a sample.
func serveCommands(in io.Reader, report func(childReport), stop func()) {
	defer stop()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		r := sampleSelf()
		if cmd == "profile" {
			if err := writeHeapProfile(arg); err != nil {
				r.Err = err.Error()
			}
		}
		report(r)
	}
}

func sampleSelf() childReport {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds := -1
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(entries)
	}
	return childReport{HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine(), FDs: fds}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serveNATS runs a JetStream cluster of soakNATSSize nodes on loopback, each syncing every write
// to disk, with their stores under args[0]; it reports the client URLs once a meta leader sees
// every peer, and shuts the nodes down when ctx ends.
func serveNATS(ctx context.Context, args []string, report func(childReport)) int {
	fs := flag.NewFlagSet(partNATS, flag.ContinueOnError)
	dir := fs.String("store", "", "directory of the nodes' stores")
	if err := fs.Parse(args); err != nil || *dir == "" {
		fmt.Fprintf(os.Stderr, "soak child: %s: want -store DIR (%v)\n", partNATS, err)
		return 2
	}
	clientPorts, routes := make([]int, soakNATSSize), make([]string, soakNATSSize)
	routePorts := make([]int, soakNATSSize)
	for i := range soakNATSSize {
		var err error
		if clientPorts[i], err = freeport.Port(); err == nil {
			routePorts[i], err = freeport.Port()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "soak child: %v\n", err)
			return 1
		}
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
	}
	var nodes []*server.Server
	defer func() {
		for _, s := range nodes {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}()
	urls := make([]string, soakNATSSize)
	for i := range soakNATSSize {
		name := fmt.Sprintf("n%d", i+1)
		s, err := server.NewServer(&server.Options{
			ServerName: name, Host: "127.0.0.1", Port: clientPorts[i], JetStream: true,
			StoreDir: fmt.Sprintf("%s/%s", *dir, name), SyncAlways: true, NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "soak", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "soak child: node %s: %v\n", name, err)
			return 1
		}
		go s.Start()
		nodes = append(nodes, s)
		if !s.ReadyForConnections(30 * time.Second) {
			fmt.Fprintf(os.Stderr, "soak child: node %s not ready after 30s\n", name)
			return 1
		}
		urls[i] = s.ClientURL()
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ready := func() bool {
			for _, s := range nodes {
				if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == soakNATSSize {
					return true
				}
			}
			return false
		}(); ready {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "soak child: no JetStream meta leader with %d peers after 60s\n", soakNATSSize)
			return 1
		}
	}
	report(childReport{URL: strings.Join(urls, ",")})
	<-ctx.Done()
	return 0
}
