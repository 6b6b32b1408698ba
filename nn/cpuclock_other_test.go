//go:build !linux

package nn

import "time"

// processCPU is unavailable here; benchmarks then report no CPU-time rate.
func processCPU() time.Duration { return 0 }
