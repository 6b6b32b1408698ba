package models_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
)

// Open and Import name the input at fault (*models.InputError), so that a
// program can point at its own option; a slab file opens with or without
// the name it records.
func TestOpenImportInputErrors(t *testing.T) {
	dir := t.TempDir()
	m, err := models.New("deit_mini_28", 1)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := models.WeightsFile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	slabFile := filepath.Join(dir, "w.safetensors")
	if err := checkpoint.Write(slabFile, wf); err != nil {
		t.Fatal(err)
	}
	state := checkpoint.NewFile() // a bare state dict: no model_config
	for k, e := range wf.Tensors {
		state.Tensors[k] = e
	}
	stateFile := filepath.Join(dir, "state.safetensors")
	if err := checkpoint.Write(stateFile, state); err != nil {
		t.Fatal(err)
	}
	pth := filepath.Join(dir, "x.pth")
	if err := os.WriteFile(pth, []byte("PK\x03\x04junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "deit_mini_28"} {
		if o, _, err := models.Open(slabFile, name); err != nil || models.ConfigName(o.Config()) != "deit_mini_28" {
			t.Fatalf("Open(%q): %v", name, err)
		}
	}
	if _, _, err := models.Open(stateFile, "deit_mini_28"); err != nil {
		t.Fatalf("Open(state dict): %v", err)
	}
	for _, c := range []struct {
		err   error
		input string
	}{
		{errOf3(models.Open(slabFile, "slab_deit_mini_28")), "name"},
		{errOf3(models.Open(stateFile, "")), "name"},
		{errOf3(models.Open(pth, "")), "name"},
		{errOf3(models.Open(filepath.Join(dir, "none"), "deit_mini_28")), "path"},
		{errOf4(models.Import(stateFile, "nope", "")), "name"},
		{errOf4(models.Import(stateFile, "deit_mini_28", "model")), "key"},
		{errOf3(models.Resolve("deit_mini_28", map[string]string{"norm": "groupnorm"})), "norm"},
	} {
		var ie *models.InputError
		if !errors.As(c.err, &ie) || ie.Input != c.input {
			t.Errorf("error %v: want an InputError naming %q", c.err, c.input)
		}
	}
}

// errOf3 and errOf4 keep the error of a call with three or four results.
func errOf3[A, B any](_ A, _ B, err error) error { return err }

func errOf4[A, B, C any](_ A, _ B, _ C, err error) error { return err }
