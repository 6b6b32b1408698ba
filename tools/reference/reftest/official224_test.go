//go:build slow

package reftest_test

// Full-size official-layout checkpoints (docs/method.md 4.6): PyTorch writes
// slab_deit_tiny.pth (LinearNorm keys, unused cls_token, SLA) and
// deit_tiny_prepbn.pth (bare RepBN keys, class token, softmax) at 224px
// with random weights and realistic running statistics into a temporary
// directory (~25 MB each, never committed), then slab imports them with
// checkpoint.ReadPTH + vit.LoadState, folds with fuse.Fuse and must
// reproduce PyTorch's float64 logits to 1e-4 normwise.
//
//	go test -tags slow -run FullSize -v ./tools/reference/reftest/
//
// Needs /usr/bin/python3 with torch (Debian python3-torch).

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/tools/reference/reftest"
)

func TestFullSizeOfficialImport(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir := t.TempDir()
	script := filepath.Join(filepath.Dir(reftest.Dir(t)), "..", "tools", "reference", "reference.py")
	cmd := exec.Command("/usr/bin/python3", script, "--pth-full", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	for _, name := range []string{"slab_deit_tiny", "deit_tiny_prepbn"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := vit.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			f := reftest.LoadPath(t, filepath.Join(dir, name+"_logits.safetensors"))
			pth, err := checkpoint.ReadPTH(filepath.Join(dir, name+".pth"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := vit.New(cfg, 7)
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := vit.LoadState(m, pth.Tensors)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				t.Logf("LoadState warning: %s", w)
			}
			logits, err := m.Forward(f.T("input"), false)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "eval logits", logits, f.T("logits"), reftest.Tol{Rel: 1e-4})
			d, err := fuse.Fuse(m)
			if err != nil {
				t.Fatal(err)
			}
			fl, err := d.Forward(f.T("input"), false)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "fused logits", fl, f.T("logits"), reftest.Tol{Rel: 1e-4})
		})
	}
}
