//go:build !unix

package main

import "time"

// lmCPUTime is unavailable here; CPU-time rates are then reported as 0.
func lmCPUTime() time.Duration { return 0 }
