package tracing

import (
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// LogHook adds the fields trace_id and span_id to every log line whose event carries a context
// (zerolog's Event.Ctx, or a logger built With().Ctx) with a span: install it on a service's
// logger (Logger.Hook) and give each line written while handling a request or a batch the
// request's context. Lines without one are left as they are.
var LogHook zerolog.Hook = logHook{}

type logHook struct{}

func (logHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	sc := trace.SpanContextFromContext(e.GetCtx())
	if !sc.IsValid() {
		return
	}
	e.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
}
