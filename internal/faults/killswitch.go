package faults

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// ErrKilled is returned by a KillSwitch's connections once it has fired.
var ErrKilled = errors.New("faults: connection killed")

// KillSwitch is a nats.CustomDialer whose connections die, when armed, right after they send a
// message on a subject with a given prefix: the process that sent it is gone before any reply,
// such as a command service instance killed after its append left, before the store's ack.
// Whether the append reached the server is left to chance, as in a real crash.
type KillSwitch struct {
	prefix []byte
	// armedFor is the frame prefix of the armed switch: prefix, or what ArmOn named.
	armedFor atomic.Pointer[[]byte]

	armed  atomic.Bool
	fired  atomic.Bool
	done   chan struct{}
	mu     sync.Mutex
	conns  []net.Conn
	onFire func()
}

// NewKillSwitch returns a switch that fires on the first publish to a subject starting with
// prefix once armed.
func NewKillSwitch(prefix string) *KillSwitch {
	return &KillSwitch{prefix: []byte("PUB " + prefix), done: make(chan struct{})}
}

// OnFire sets what runs (on its own goroutine) when the switch fires: close the nats.Conn, so
// that it does not reconnect.
func (k *KillSwitch) OnFire(f func()) {
	k.mu.Lock()
	k.onFire = f
	k.mu.Unlock()
}

// Arm makes the next matching publish fatal.
func (k *KillSwitch) Arm() { k.arm(k.prefix) }

// ArmOn makes the next publish to a subject starting with prefix fatal, instead of the
// switch's own prefix: an instance killed right after it sent the key messages of an append,
// on cim.key., after its events.
func (k *KillSwitch) ArmOn(prefix string) { k.arm([]byte("PUB " + prefix)) }

func (k *KillSwitch) arm(frame []byte) {
	k.armedFor.Store(&frame)
	k.armed.Store(true)
}

// Fired is closed once the switch has fired.
func (k *KillSwitch) Fired() <-chan struct{} { return k.done }

// Dial implements nats.CustomDialer.
func (k *KillSwitch) Dial(network, address string) (net.Conn, error) {
	if k.fired.Load() {
		return nil, ErrKilled
	}
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.conns = append(k.conns, c)
	k.mu.Unlock()
	return &killConn{Conn: c, k: k}, nil
}

func (k *KillSwitch) fire() {
	if !k.fired.CompareAndSwap(false, true) {
		return
	}
	k.mu.Lock()
	for _, c := range k.conns {
		c.Close()
	}
	f := k.onFire
	k.mu.Unlock()
	close(k.done)
	if f != nil {
		go f()
	}
}

type killConn struct {
	net.Conn
	k *KillSwitch
}

func (c *killConn) Write(p []byte) (int, error) {
	if c.k.fired.Load() {
		return 0, ErrKilled
	}
	n, err := c.Conn.Write(p)
	// "PUB " matches both PUB and HPUB frames.
	if c.k.armed.Load() && bytes.Contains(p, *c.k.armedFor.Load()) {
		c.k.fire()
	}
	return n, err
}

func (c *killConn) Read(p []byte) (int, error) {
	if c.k.fired.Load() {
		return 0, ErrKilled
	}
	return c.Conn.Read(p)
}
