package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runIn runs a subcommand in-process the way main does (panics become
// errors) and returns its stdout.
func runIn(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	stdout, stderr = &out, &errb
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	c, ok := commands[args[0]]
	if !ok {
		t.Fatalf("no command %q", args[0])
	}
	err := run(c, args[1:])
	return out.String(), err
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.safetensors")
	if err := os.WriteFile(existing, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("\x08\x00\x00\x00\x00\x00\x00\x00{broken}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string // substring of the error
	}{
		{[]string{"train", "--bogus"}, "-bogus"},
		{[]string{"train", "--epochs", "x", "--out", dir}, "-epochs"},
		{[]string{"train"}, "--out"},
		{[]string{"train", "--out", dir, "--epochs", "0"}, "--epochs"},
		{[]string{"train", "--out", dir, "--lr", "-1"}, "--lr"},
		{[]string{"train", "--out", dir, "--smoothing", "1.5"}, "--smoothing"},
		{[]string{"train", "--out", dir, "--model", "nope"}, "--model"},
		{[]string{"train", "--out", dir, "--norm", "groupnorm"}, "--norm"},
		{[]string{"train", "--out", dir, "--attn", "flash"}, "--attn"},
		{[]string{"train", "--out", dir, "--threads", "-2"}, "--threads"},
		{[]string{"train", "--out", dir, "--drop-path", "1.5"}, "--drop-path"},
		{[]string{"train", "--out", dir, "--resume", garbage}, garbage},
		{[]string{"train", "--out", dir, "--resume", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"eval"}, "--weights"},
		{[]string{"eval", "--weights", garbage}, garbage},
		{[]string{"eval", "--weights", existing, "--batch", "0"}, "--batch"},
		{[]string{"fuse", "--weights", garbage}, "--out"},
		{[]string{"fuse", "--weights", garbage, "--out", existing}, "--force"},
		{[]string{"fuse", "--weights", garbage, "--out", filepath.Join(dir, "new")}, garbage},
		{[]string{"bench"}, "--models"},
		{[]string{"bench", "--models", "nope"}, "--models"},
		{[]string{"bench", "--models", "deit_mini_28", "--batch", "0"}, "--batch"},
		{[]string{"bench", "--models", "deit_mini_28", "--rounds", "0"}, "--rounds"},
		{[]string{"info"}, "MODEL"},
		{[]string{"info", "nope"}, "nope"},
		{[]string{"info", "deit_mini_28", "--size", "30"}, "--size"},
		{[]string{"models", "extra"}, "extra"},
	} {
		out, err := runIn(t, c.args...)
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "internal error") {
			t.Errorf("%v: error %q, want one line mentioning %q", c.args, msg, c.want)
		}
		if out != "" {
			t.Errorf("%v: wrote %q to stdout on error", c.args, out)
		}
		t.Logf("%v -> %v", c.args, msg)
	}
	// -h is not an error.
	if _, err := runIn(t, "train", "-h"); err != nil {
		t.Errorf("train -h: %v", err)
	}
}

func TestInfoAndModelsJSON(t *testing.T) {
	out, err := runIn(t, "info", "slab_deit_mini_28", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r infoResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("info --json printed %q (%v)", out, err)
	}
	var sum int64
	for _, v := range r.FLOPs {
		sum += v
	}
	if r.Params <= 0 || r.Total != sum || r.FLOPs["linear"] <= 0 || r.Tokens != 49 {
		t.Errorf("info: %+v", r)
	}
	t.Logf("slab_deit_mini_28: %d params, %d FLOPs/image", r.Params, r.Total)
	out, err = runIn(t, "models", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ms struct{ Models []modelEntry }
	if err := json.Unmarshal([]byte(out), &ms); err != nil || len(ms.Models) < 9 {
		t.Fatalf("models --json: %q (%v)", out, err)
	}
}
