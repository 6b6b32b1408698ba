//go:build !linux

package kernels

import "time"

// processCPU is unavailable here; benchmarks then skip the CPU-time rates.
func processCPU() time.Duration { return 0 }
