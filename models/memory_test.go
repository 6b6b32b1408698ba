package models_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
	"github.com/slabml/slab/sysmem"
)

// Every registered model's footprint at a usual batch is in a sane range:
// above its weights, below what this repository's own runs would refuse.
func TestEstimateRegistered(t *testing.T) {
	for _, e := range models.Entries() {
		c := e.Config()
		n := 64
		if e.Family.Task == models.TaskLM {
			n = 8 * 256
		}
		f := models.Estimate(c, n, true)
		t.Logf("%-28s params %11d  weights %9s  activations(n=%d, train) %9s", e.Name, c.ParamCount(), sysmem.Bytes(f.Weights), n, sysmem.Bytes(f.Activations))
		if f.Weights < 4*c.ParamCount() || f.Activations <= 0 {
			t.Errorf("%s: footprint %+v below its own weights", e.Name, f)
		}
		if f.Total() > 64<<30 {
			t.Errorf("%s: footprint %s at n=%d: an estimate this large would refuse our own runs", e.Name, sysmem.Bytes(f.Total()), n)
		}
	}
}

// A checkpoint whose model_config claims an absurd width is refused by
// name before anything is allocated, and a config in bounds too large for
// the memory available is refused by CheckMemory with what it needs.
func TestHugeConfigRefused(t *testing.T) {
	e, c, err := models.Lookup("slab_deit_mini_28")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(c)
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	raw["Dim"] = 100000
	js, _ = json.Marshal(raw)
	f := checkpoint.NewFile()
	f.Metadata[models.MetaFamily] = e.Family.Name
	f.Metadata[models.MetaConfig] = string(js)
	_, _, err = models.FromFile(f, "huge.safetensors")
	if err == nil || !strings.Contains(err.Error(), "huge.safetensors") || !strings.Contains(err.Error(), "Dim 100000 is above its bound") {
		t.Fatalf("width 100000: %v", err)
	}
	t.Log(err)

	t.Setenv(sysmem.EnvLimit, "64M")
	raw["Dim"], raw["Depth"] = 4096, 64 // in bounds, 12.9 G parameters
	js, _ = json.Marshal(raw)
	f.Metadata[models.MetaConfig] = string(js)
	_, _, err = models.FromFile(f, "big.safetensors")
	var me *models.MemoryError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "big.safetensors") || !strings.Contains(err.Error(), "available") {
		t.Fatalf("12.9 G parameters under a 64 MB limit: %v", err)
	}
	t.Log(err)
	if err := models.CheckMemory("batch 1000000", c, 1000000, false); err == nil || !strings.Contains(err.Error(), "batch 1000000") {
		t.Fatalf("batch 1000000 under a 64 MB limit: %v", err)
	} else {
		t.Log(err)
	}
	t.Setenv(sysmem.EnvLimit, "2G")
	if err := models.CheckMemory("batch 64", c, 64, true); err != nil {
		t.Fatalf("batch 64 of the mini model under 2 GB: %v", err)
	}
}

// A language model's attention is charged for the sequence trained on,
// not its whole context: llama_350m trains at 8 x 256 tokens within this
// repository's 2-core, 24 GB machine.
func TestEstimateLMSeq(t *testing.T) {
	_, c, err := models.Lookup("llama_350m")
	if err != nil {
		t.Fatal(err)
	}
	full, short := models.Estimate(c, 8*256, true), models.EstimateLM(c, 8, 256, true)
	t.Logf("llama_350m training 8 x 256 tokens: %s charged at full context, %s at seq 256", sysmem.Bytes(full.Total()), sysmem.Bytes(short.Total()))
	if short.Total() >= full.Total() || short.Total() > 20<<30 {
		t.Fatalf("seq-aware estimate %s (full context %s)", sysmem.Bytes(short.Total()), sysmem.Bytes(full.Total()))
	}
}

// ActivationBytes measures an eval forward's buffers per image: at most the
// estimate, which counts training's buffers too, and not below a quarter
// of it (an eval forward still keeps every layer's output).
func TestActivationBytes(t *testing.T) {
	for _, name := range []string{"slab_deit_mini_28", "slab_swin_mini_32", "slab_pvt_mini_32"} {
		m, err := models.New(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		c := m.(models.Classifier)
		got, err := models.ActivationBytes(c)
		if err != nil {
			t.Fatal(err)
		}
		est := models.Estimate(c.Config(), 1, false).Activations
		t.Logf("%s: measured %d bytes per image, estimate %d (%.2fx)", name, got, est, float64(est)/float64(got))
		if got < est/4 || got > est {
			t.Errorf("%s: measured %d bytes per image, want in [%d, %d]", name, got, est/4, est)
		}
	}
}
