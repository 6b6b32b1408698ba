package main

import (
	"os"
	"testing"
)

// TestGeneratedUpToDate fails when the committed vec_amd64.s differs from
// what the generator writes now (an edit to one without the other).
func TestGeneratedUpToDate(t *testing.T) {
	const name = "../vec_amd64.s"
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != generate() {
		t.Errorf("%s is stale: run go generate ./kernels", name)
	}
}
