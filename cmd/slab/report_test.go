package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/slabml/slab/bench"
)

// slab report names the same missing flag every run (the first in the
// usage's order), its usage names only flags it has, and the table joins
// the train, eval and bench outputs by model.
func TestReport(t *testing.T) {
	for range 5 {
		if _, err := runIn(t, "report"); err == nil || !strings.Contains(err.Error(), "--slab-train") {
			t.Fatalf("report without flags: %v, want --slab-train named", err)
		}
	}
	var usage bytes.Buffer
	stderr = &usage
	err := run(commands["report"], []string{"-h"})
	stderr = os.Stderr
	if err != nil {
		t.Fatal(err)
	}
	line, defs, _ := strings.Cut(usage.String(), "flags:")
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(strings.Trim(w, "[]"), "--") && !regexp.MustCompile(`(?m)^  -`+strings.Trim(w, "[]-")+`( |$)`).MatchString(defs) {
			t.Errorf("usage names %s, which report does not define:\n%s", w, usage.String())
		}
	}
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	st := write("st.json", trainResult{Model: "slab_m", Norm: "prepbn", Attn: "sla", Epochs: 3})
	tt := write("tt.json", trainResult{Model: "twin_m", Norm: "layernorm", Attn: "softmax", Epochs: 3})
	se := write("se.json", evalResult{Accuracy: 0.9, Params: 100, FLOPs: 2e6})
	sf := write("sf.json", evalResult{Accuracy: 0.9, Params: 90, FLOPs: 1e6})
	te := write("te.json", evalResult{Accuracy: 0.8, Params: 110, FLOPs: 3e6})
	b := write("b.json", benchResult{Threads: 2, Results: []bench.ClassifyRow{{Model: "slab_m", MedianMS: 1}, {Model: "slab_m/unfused", MedianMS: 2}, {Model: "twin_m", MedianMS: 3}}})
	args := []string{"report", "--slab-train", st, "--twin-train", tt, "--slab-eval", se, "--slab-fused-eval", sf, "--twin-eval", te, "--bench", b}
	out, err := runIn(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "slab_m") || !strings.Contains(out, "twin_m") || !strings.Contains(out, "90.00%") || strings.Count(out, "\n") != 3 {
		t.Fatalf("report table:\n%s", out)
	}
	out, err = runIn(t, append(args, "--json")...)
	var r struct {
		Rows []reportRow `json:"rows"`
	}
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.Rows) != 2 || r.Rows[0].FusedLatency != 1 || r.Rows[0].LatencyMS != 2 || r.Rows[1].LatencyMS != 3 {
		t.Fatalf("report --json: %v %s", err, out)
	}
	if _, err := runIn(t, "report", "--slab-train", filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing input: %v", err)
	}
}
