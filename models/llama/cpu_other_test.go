//go:build !unix

package llama_test

// userCPU is unavailable here; CPU-time rates are not reported.
func userCPU() float64 { return 0 }
