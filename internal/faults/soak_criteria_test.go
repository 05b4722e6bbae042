package faults

import (
	"strings"
	"testing"
	"time"
)

// soakSeries builds 60 samples (10 minutes) of two command services, the NATS cluster and the
// load, with figures from f (for the service named "command-service-1") and flat ones for the
// rest, and one accepted write per period.
func soakSeries(f func(i int) procSample) []soakSample {
	flat := procSample{heapMiB: 6, goroutines: 40, fds: 14}
	var ss []soakSample
	for i := range 60 {
		wobble := float64(i%3) * 0.3 // a collection's noise
		ss = append(ss, soakSample{
			at:       time.Duration(i+1) * soakEvery,
			outcomes: map[string]int64{OutcomeOK: 1},
			procs: map[string]procSample{
				"command-service-0": {heapMiB: flat.heapMiB + wobble, goroutines: flat.goroutines, fds: flat.fds},
				"command-service-1": f(i),
				procNATS:            {heapMiB: 60 + 3*float64(i), goroutines: 200 + i, fds: 80 + i},
				procLoad:            {heapMiB: 3 + float64(i), goroutines: 40, fds: 50},
			},
		})
	}
	return ss
}

// The plateau criterion passes a flat process after a warm-up that grows, and catches a heap,
// goroutine or descriptor leak in a process of ours; the NATS cluster's and the load's growth are
// not ours and do not fail it.
func TestSoakPlateauCriterion(t *testing.T) {
	const warm = 12
	warmingUp := func(i int, steady procSample) procSample {
		if i < warm { // the caches filling
			steady.heapMiB = steady.heapMiB * float64(i+1) / warm
		}
		return steady
	}
	for _, tc := range []struct {
		name string
		f    func(i int) procSample
		want string // in the one complaint expected; empty: none
	}{
		{"flat after the warm-up", func(i int) procSample {
			return warmingUp(i, procSample{heapMiB: 6 + float64(i%2)*0.5, goroutines: 40 + i%3, fds: 14 + i%2})
		}, ""},
		{"heap leak of 0.25 MiB a minute", func(i int) procSample {
			return warmingUp(i, procSample{heapMiB: 6 + 0.25*float64(i)/6, goroutines: 40, fds: 14})
		}, "command-service-1: heap in use grew"},
		{"a goroutine every 20s", func(i int) procSample {
			return warmingUp(i, procSample{heapMiB: 6, goroutines: 40 + i/2, fds: 14})
		}, "command-service-1: goroutines grew"},
		{"a descriptor a minute", func(i int) procSample {
			return warmingUp(i, procSample{heapMiB: 6, goroutines: 40, fds: 14 + i/6})
		}, "command-service-1: open descriptors grew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			report, grew := plateau(soakSeries(tc.f), warm)
			if len(report) != 5 {
				t.Errorf("report has %d lines, want a heading and one per process:\n%s", len(report), strings.Join(report, "\n"))
			}
			switch {
			case tc.want == "" && len(grew) > 0:
				t.Errorf("flat process judged grown: %v", grew)
			case tc.want != "" && (len(grew) != 1 || !strings.HasPrefix(grew[0], tc.want)):
				t.Errorf("got %q, want one complaint starting %q\n%s", grew, tc.want, strings.Join(report, "\n"))
			}
		})
	}
	if _, grew := plateau(soakSeries(func(int) procSample { return procSample{} })[:warm+3], warm); len(grew) != 1 {
		t.Errorf("3 samples after the warm-up judged: %v", grew)
	}
}

// A period without an accepted write is reported: the workload ran dry.
func TestSoakDryPeriods(t *testing.T) {
	ss := soakSeries(func(int) procSample { return procSample{} })
	ss[0].outcomes = map[string]int64{} // the first period may be all set-up
	if dry := dryPeriods(ss); len(dry) != 0 {
		t.Errorf("every period wrote, yet: %v", dry)
	}
	ss[40].outcomes = map[string]int64{OutcomeRefused: 900, OutcomeRead: 100}
	if dry := dryPeriods(ss); len(dry) != 1 || !strings.HasPrefix(dry[0], "t=6m50s") {
		t.Errorf("got %q, want the period ending at 6m50s", dry)
	}
}
