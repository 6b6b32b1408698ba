package main

import (
	"os"
	"testing"
)

// TestGeneratedUpToDate fails when the checked-in assembly or its Go
// declarations differ from what the generator writes now.
func TestGeneratedUpToDate(t *testing.T) {
	asm, goSrc := generate()
	files := map[string]string{"../gemm_amd64.s": asm, "../gemm_kernels_amd64.go": goSrc, "../quant_amd64.s": generateLowPrec(), "../gemm_bf16_amd64.s": generateGemmBF16(),
		"../gemm_int8_amd64.s": generateGemmInt8()}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s is stale: run go generate ./kernels", name)
		}
	}
}
