package api

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// W3C Trace Context headers (https://www.w3.org/TR/trace-context/): the services continue the
// trace a request carries in them, and the command service stores them on the events it appends.
// The names are lowercase, as the W3C spells them: NATS headers are case-sensitive.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// TraceCarrier lets an OpenTelemetry propagator (go.opentelemetry.io/otel/propagation) read and
// write trace context in NATS headers. It writes names exactly as the propagator gives them
// (propagation.HeaderCarrier goes through http.Header, which would write "Traceparent"). It
// reads a name exactly first, then, if absent, in any letter case, so that a header a client
// canonicalised is still understood.
type TraceCarrier nats.Header

// Get returns the first value of key.
func (c TraceCarrier) Get(key string) string {
	if vs := c[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range c {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// Set replaces the values of key with value.
func (c TraceCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the header names.
func (c TraceCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
