package main

import (
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

// mustWeightsFile is m as a slab weights file (family, config, state).
func mustWeightsFile(t *testing.T, m models.Model) *checkpoint.File {
	t.Helper()
	f, err := models.WeightsFile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
