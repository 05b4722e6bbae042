package projector

import (
	"time"

	"github.com/rs/zerolog"
)

// progress logs catch-up progress (applied, remaining, rate, time left) at most once per period
// while the projector is behind, and once more when it has caught up.
type progress struct {
	every     time.Duration
	start     time.Time
	lastLog   time.Time
	applied   int
	catchingU bool
}

func newProgress(every time.Duration) *progress {
	now := time.Now()
	return &progress{every: every, start: now, lastLog: now}
}

func (p *progress) observe(log zerolog.Logger, n int, pending uint64) {
	p.applied += n
	now := time.Now()
	if pending == 0 {
		if p.catchingU {
			log.Info().Int("applied", p.applied).Dur("took", now.Sub(p.start)).Msg("caught up with the stream")
			p.catchingU = false
		}
		p.start, p.applied = now, 0
		return
	}
	if !p.catchingU {
		p.catchingU = true
		p.start, p.applied, p.lastLog = now, n, now
		return
	}
	if now.Sub(p.lastLog) < p.every {
		return
	}
	p.lastLog = now
	elapsed := now.Sub(p.start).Seconds()
	rate := float64(p.applied) / elapsed
	ev := log.Info().Int("applied", p.applied).Uint64("remaining", pending).
		Uint64("total", uint64(p.applied)+pending).Float64("events_per_s", rate)
	if rate > 0 {
		ev = ev.Dur("time_left", time.Duration(float64(pending)/rate*float64(time.Second)))
	}
	ev.Msg("catching up")
}
