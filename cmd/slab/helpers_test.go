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

// mustWriteWeights writes m's weights file to path.
func mustWriteWeights(t *testing.T, path string, m models.Model) {
	t.Helper()
	if err := checkpoint.Write(path, mustWeightsFile(t, m)); err != nil {
		t.Fatal(err)
	}
}
