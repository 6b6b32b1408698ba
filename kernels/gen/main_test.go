package main

import (
	"os"
	"testing"
)

// TestGeneratedUpToDate fails when the checked-in assembly or its Go
// declarations differ from what the generator writes now.
func TestGeneratedUpToDate(t *testing.T) {
	asm, goSrc := generate()
	for name, want := range map[string]string{"../gemm_amd64.s": asm, "../gemm_kernels_amd64.go": goSrc} {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s is stale: run go generate ./kernels", name)
		}
	}
}
