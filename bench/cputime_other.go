//go:build !unix

package bench

import "time"

// CPUTime is unavailable here; CPU-time rates are then reported as 0.
func CPUTime() time.Duration { return 0 }
