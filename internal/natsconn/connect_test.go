package natsconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connectCheck connects with cfg and proves the connection works with a request to itself.
func connectCheck(t *testing.T, cfg Config) error {
	t.Helper()
	nc, err := Connect(ctxFor(t), cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := nc.Subscribe("ping", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	reply, err := nc.Request("ping", nil, 10*time.Second)
	if err != nil || string(reply.Data) != "pong" {
		t.Fatalf("request over authenticated connection: %v", err)
	}
	return nil
}

func expectRefused(t *testing.T, err error, want error, mention string) {
	t.Helper()
	if err == nil {
		t.Fatal("connected with wrong credentials")
	}
	t.Logf("refused as expected: %v", err)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a refusal was retried until the context ended: %v", err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("error = %v, want %v", err, want)
	}
	if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(mention)) {
		t.Errorf("error %q does not mention %q", err, mention)
	}
}

func TestConnectUserPassword(t *testing.T) {
	t.Parallel()
	n := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.Username, o.Password = "svc", "right"
	}))
	if err := connectCheck(t, Config{URL: n.ClientURL(), User: "svc", Password: "right"}); err != nil {
		t.Fatalf("right password: %v", err)
	}
	err := connectCheck(t, Config{URL: n.ClientURL(), User: "svc", Password: "wrong"})
	expectRefused(t, err, nats.ErrAuthorization, n.ClientURL())
	err = connectCheck(t, Config{URL: n.ClientURL()})
	expectRefused(t, err, nats.ErrAuthorization, "none given")
}

func TestConnectToken(t *testing.T) {
	t.Parallel()
	n := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) { o.Authorization = "s3cr3t" }))
	if err := connectCheck(t, Config{URL: n.ClientURL(), Token: "s3cr3t"}); err != nil {
		t.Fatalf("right token: %v", err)
	}
	expectRefused(t, connectCheck(t, Config{URL: n.ClientURL(), Token: "guess"}), nats.ErrAuthorization, "token -nats-token (NATS_TOKEN)")
}

func TestConnectNKey(t *testing.T) {
	t.Parallel()
	seed, public := userSeedFile(t)
	otherSeed, _ := userSeedFile(t)
	n := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: public}}
	}))
	if err := connectCheck(t, Config{URL: n.ClientURL(), NKeySeedFile: seed}); err != nil {
		t.Fatalf("right nkey: %v", err)
	}
	expectRefused(t, connectCheck(t, Config{URL: n.ClientURL(), NKeySeedFile: otherSeed}), nats.ErrAuthorization, "authorization")
}

// TestConnectCredsFile runs a server in operator (decentralised JWT) mode: operator, account
// and user keys, the account's JWT in a memory resolver, and a creds file for the user.
func TestConnectCredsFile(t *testing.T) {
	t.Parallel()
	operator := mustKey(t, nkeys.CreateOperator)
	account := mustKey(t, nkeys.CreateAccount)
	opPub, _ := operator.PublicKey()
	accPub, _ := account.PublicKey()

	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	opClaims, err := jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		t.Fatal(err)
	}
	accClaims := jwt.NewAccountClaims(accPub)
	accClaims.Limits.JetStreamLimits = jwt.JetStreamLimits{} // no JetStream needed here
	accJWT, err := accClaims.Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(accPub, accJWT); err != nil {
		t.Fatal(err)
	}
	n := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.JetStream = false
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		o.AccountResolver = resolver
	}))

	creds := func(signer nkeys.KeyPair, issuerAccount string) string {
		user := mustKey(t, nkeys.CreateUser)
		userPub, _ := user.PublicKey()
		uc := jwt.NewUserClaims(userPub)
		uc.IssuerAccount = issuerAccount
		userJWT, err := uc.Encode(signer)
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := user.Seed()
		contents, err := jwt.FormatUserConfig(userJWT, seed)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, "user.creds", string(contents))
	}
	if err := connectCheck(t, Config{URL: n.ClientURL(), CredsFile: creds(account, "")}); err != nil {
		t.Fatalf("right creds: %v", err)
	}
	// A user signed by an account the operator never issued.
	stranger := mustKey(t, nkeys.CreateAccount)
	expectRefused(t, connectCheck(t, Config{URL: n.ClientURL(), CredsFile: creds(stranger, "")}), nats.ErrAuthorization, "authorization")
}

func mustKey(t *testing.T, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestConnectTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "right")
	other := newPKI(t, "other")
	n := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.TLS = true
		o.TLSVerify = true
		o.TLSConfig = p.serverTLS(t)
		o.TLSTimeout = 5
	}))
	url := "tls://" + strings.TrimPrefix(n.ClientURL(), "nats://")

	if err := connectCheck(t, Config{URL: url, TLSCA: p.CA, TLSCert: p.ClientCert, TLSKey: p.ClientKey}); err != nil {
		t.Fatalf("right CA and client certificate: %v", err)
	}
	// The server's certificate is not signed by the CA the client trusts.
	expectRefused(t, connectCheck(t, Config{URL: url, TLSCA: other.CA, TLSCert: p.ClientCert, TLSKey: p.ClientKey}), nil, "certificate")
	// The client's certificate is not signed by the CA the server trusts, or there is none. The
	// server's refusal reaches the client either as a TLS alert or as a closed connection, so
	// only "tls" is common to both messages.
	expectRefused(t, connectCheck(t, Config{URL: url, TLSCA: p.CA, TLSCert: other.ClientCert, TLSKey: other.ClientKey}), nil, "tls")
	expectRefused(t, connectCheck(t, Config{URL: url, TLSCA: p.CA}), nil, "tls")
}

func TestConnectWaitsForServer(t *testing.T) {
	t.Parallel()
	port := testkit.FreePort(t)
	node := make(chan *natstest.Node, 1)
	logs := &testkit.LogBuffer{}
	go func() {
		// Started only once Connect has failed at least once, so the retry path is taken.
		testkit.WaitFor(t, ctxFor(t), "first failed attempt", func() bool { return strings.Contains(logs.String(), "nats unreachable") })
		node <- natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) { o.Port = port }))
	}()
	nc, err := Connect(ctxFor(t), Config{URL: "nats://127.0.0.1:" + itoa(port), ReconnectWait: 20 * time.Millisecond}, zerolog.New(logs))
	if err != nil {
		t.Fatalf("connect: %v\nlogs:\n%s", err, logs)
	}
	defer nc.Close()
	<-node
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
}

func TestConnectGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testkit.LogBuffer{}
	go func() {
		testkit.WaitFor(t, ctxFor(t), "first failed attempt", func() bool { return strings.Contains(logs.String(), "nats unreachable") })
		cancel()
	}()
	_, err := Connect(ctx, Config{URL: "nats://127.0.0.1:" + itoa(testkit.FreePort(t)), ReconnectWait: 20 * time.Millisecond}, zerolog.New(logs))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

// TestConnectGivesUpAfterConnectAttempts: with ConnectAttempts, Connect tries that many times
// (it logs a retry after each failed attempt but the last) and says so in a typed error.
func TestConnectGivesUpAfterConnectAttempts(t *testing.T) {
	t.Parallel()
	for _, attempts := range []int{1, 3} {
		logs := &testkit.LogBuffer{}
		url := "nats://127.0.0.1:" + itoa(testkit.FreePort(t))
		_, err := Connect(ctxFor(t), Config{URL: url, ReconnectWait: time.Millisecond, ConnectAttempts: attempts}, zerolog.New(logs))
		var unreachable *UnreachableError
		if !errors.As(err, &unreachable) || unreachable.Attempts != attempts || unreachable.Target != url {
			t.Fatalf("ConnectAttempts %d: error = %#v, want an *UnreachableError after %d attempts to %s", attempts, err, attempts, url)
		}
		if retries := strings.Count(logs.String(), "nats unreachable, retrying"); retries != attempts-1 {
			t.Errorf("ConnectAttempts %d: %d retries logged, want %d:\n%s", attempts, retries, attempts-1, logs)
		}
		if want := fmt.Sprintf("no server reached in %d attempt", attempts); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestConnectRejectsInvalidConfigBeforeDialing(t *testing.T) {
	t.Parallel()
	_, err := Connect(ctxFor(t), Config{URL: "nats://127.0.0.1:1", Token: "t", User: "u", Password: "p"}, zerolog.Nop())
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("error = %v, want ErrInvalidConfig", err)
	}
}

func TestConnectionLogsDisconnectAndReconnect(t *testing.T) {
	t.Parallel()
	n := natstest.RunServer(t)
	logs := &testkit.LogBuffer{}
	nc, err := Connect(ctxFor(t), Config{URL: n.ClientURL(), Name: "log-test", ReconnectWait: 20 * time.Millisecond}, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	n.Shutdown()
	testkit.WaitFor(t, ctxFor(t), "disconnect log", func() bool { return strings.Contains(logs.String(), `"message":"nats disconnected"`) })
	n.Restart()
	testkit.WaitFor(t, ctxFor(t), "reconnect log", func() bool { return strings.Contains(logs.String(), `"message":"nats reconnected"`) })
	nc.Close()
	testkit.WaitFor(t, ctxFor(t), "closed log", func() bool { return strings.Contains(logs.String(), `"message":"nats connection closed"`) })
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, `"component":"nats"`) {
			t.Errorf("log line without component: %s", line)
		}
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("disconnect was not logged as a warning:\n%s", logs)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestConnectInProcess connects to a server inside the process: the URL names a port nobody
// listens on, so the connection works only if it dials nothing, and the server sees a client
// without a TCP address.
func TestConnectInProcess(t *testing.T) {
	t.Parallel()
	node := natstest.RunServer(t)
	cfg := Config{URL: "nats://127.0.0.1:" + strconv.Itoa(testkit.FreePort(t)), Name: "in-process-test",
		InProcess: node.Server(), ReconnectWait: 10 * time.Millisecond}
	if err := connectCheck(t, cfg); err != nil {
		t.Fatal(err)
	}
	nc, err := Connect(ctxFor(t), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	connz, err := node.Server().Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range connz.Conns {
		if c.Name != cfg.Name {
			continue
		}
		found = true
		if c.Port != 0 {
			t.Errorf("connection %q comes from TCP %s:%d, want an in-process one", c.Name, c.IP, c.Port)
		}
	}
	if !found {
		t.Fatalf("the server lists no connection named %q: %+v", cfg.Name, connz.Conns)
	}
}
