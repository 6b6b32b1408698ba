package main

import "testing"

// TestEVEX512: the shared EVEX helper gives vdpbf16ps's bytes (verified on
// hardware) for every register triple, so only the prefix and opcode of
// VCVTNE2PS2BF16 are new (checked on hardware by kernels'
// TestCvtBF16Encoding).
func TestEVEX512(t *testing.T) {
	for d := 0; d < 32; d++ {
		for s1 := 0; s1 < 32; s1++ {
			for s2 := 0; s2 < 32; s2++ {
				got := evex512(2, 0x52, d, s1, s2, "VDPBF16PS")
				if want := vdpbf16ps(d, s1, s2); got != want {
					t.Fatalf("Z%d, Z%d, Z%d: %s, want %s", s2, s1, d, got, want)
				}
			}
		}
	}
}
