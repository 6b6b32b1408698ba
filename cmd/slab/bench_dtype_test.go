package main

import (
	"os"
	"strings"
	"testing"
)

// TestBenchDtype: slab bench --dtype runs every model in every dtype,
// interleaved, each JSON row carrying its dtype; a bad dtype names the
// flag.
func TestBenchDtype(t *testing.T) {
	var r benchResult
	oneJSON(t, runLM(t, "bench", "--models", "deit_mini_28,slab_deit_mini_28", "--dtype", "f32,bf16,int8", "--rounds", "1", "--warmup", "0", "--threads", "1", "--json"), &r)
	want := []string{"deit_mini_28/f32", "deit_mini_28/bf16", "deit_mini_28/int8", "slab_deit_mini_28/f32", "slab_deit_mini_28/bf16", "slab_deit_mini_28/int8",
		"slab_deit_mini_28/unfused/f32", "slab_deit_mini_28/unfused/bf16", "slab_deit_mini_28/unfused/int8"}
	if len(r.Results) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(r.Results), len(want), r.Results)
	}
	for i, row := range r.Results {
		if row.Model != want[i] || !strings.HasSuffix(row.Model, "/"+row.Dtype) || row.MedianMS <= 0 {
			t.Errorf("row %d: %+v, want %s", i, row, want[i])
		}
	}
	oneJSON(t, runLM(t, "bench", "--models", "deit_mini_28", "--rounds", "1", "--warmup", "0", "--threads", "1", "--json"), &r)
	if len(r.Results) != 1 || r.Results[0].Model != "deit_mini_28" || r.Results[0].Dtype != "f32" {
		t.Errorf("without --dtype: %+v", r.Results)
	}
	stdout, stderr = os.Stdout, os.Stderr
	if err := commands["bench"].Run([]string{"--models", "deit_mini_28", "--dtype", "f32,f16"}); err == nil || !strings.Contains(err.Error(), "--dtype") {
		t.Errorf("--dtype f32,f16: %v", err)
	}
}
