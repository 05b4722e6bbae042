package tracing

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// clearEnv unsets every variable Setup reads, for the test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(k, "")
	}
}

// Without an OTLP endpoint, or with the SDK disabled or the exporter "none", Setup installs
// nothing: the global provider records nothing and the services' spans are off.
func TestSetupOff(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no endpoint":   {},
		"sdk disabled":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"exporter none": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			shutdown, err := Setup(context.Background(), "test-service")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = Shutdown(shutdown) }()
			if Enabled() {
				t.Error("tracing on")
			}
			_, span := otel.Tracer("t").Start(context.Background(), "x")
			if span.IsRecording() {
				t.Error("the global provider records spans")
			}
			if _, span := Start(context.Background(), "x"); span.IsRecording() {
				t.Error("Start records a span")
			}
		})
	}
}

// With an endpoint, Setup installs a recording provider for either protocol, and its shutdown
// takes it away again; an unknown protocol or exporter is an error.
func TestSetupOn(t *testing.T) {
	for _, protocol := range []string{"", "http/protobuf", "grpc"} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			shutdown, err := Setup(context.Background(), "test-service")
			if err != nil {
				t.Fatal(err)
			}
			if !Enabled() {
				t.Error("tracing off")
			}
			ctx, span := Start(context.Background(), "x")
			if !span.IsRecording() || !trace.SpanContextFromContext(ctx).IsValid() {
				t.Error("Start records no span")
			}
			if err := Shutdown(shutdown); err != nil {
				t.Fatal(err)
			}
			if Enabled() {
				t.Error("tracing on after shutdown")
			}
		})
	}
	for name, env := range map[string][2]string{
		"protocol": {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"},
		"exporter": {"OTEL_TRACES_EXPORTER", "zipkin"},
	} {
		t.Run("bad "+name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv(env[0], env[1])
			if _, err := Setup(context.Background(), "test-service"); !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want ErrConfig", err)
			}
			if Enabled() {
				t.Error("tracing on")
			}
		})
	}
}
