package vit_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
)

func miniVariant(t *testing.T, norm, attn string, cls bool, seed uint64) *vit.Model {
	t.Helper()
	c, _ := vit.Lookup("slab_deit_mini_28")
	c.Depth = 2
	c.Name = "mini_" + norm
	c.Norm, c.Attn, c.ClsToken = norm, attn, cls
	m, err := vit.New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	randomizeState(t, m, seed+100)
	return m
}

// TestStateDictRoundTrip: export, load into a differently seeded model,
// same parameters, buffers and logits.
func TestStateDictRoundTrip(t *testing.T) {
	for _, norm := range []string{"layernorm", "repbn", "prepbn", "batchnorm"} {
		a := miniVariant(t, norm, "sla", false, 1)
		b := miniVariant(t, norm, "sla", false, 2)
		sd := models.StateDict(a)
		if len(sd) != len(a.Params())+len(a.Buffers()) {
			t.Errorf("%s: StateDict has %d entries for %d params + %d buffers", norm, len(sd), len(a.Params()), len(a.Buffers()))
		}
		if e := sd["cls_token"]; e == nil || !slices.Equal(e.Shape, []int{1, 1, 64}) {
			t.Errorf("%s: cls_token entry %v", norm, e)
		}
		if norm == "prepbn" {
			if e := sd["blocks.0.norm1.iter"]; e == nil || e.DType != "I64" || len(e.Shape) != 0 {
				t.Errorf("iter entry %+v, want 0-d I64", e)
			}
		}
		warn, err := models.LoadState(b, sd)
		if err != nil {
			t.Fatal(err)
		}
		if norm == "prepbn" && len(warn) == 0 {
			t.Errorf("mid-schedule iter gave no warning")
		}
		for i, p := range a.Params() {
			if !slices.Equal(p.W.Data, b.Params()[i].W.Data) {
				t.Errorf("%s: %s differs after load", norm, p.Name)
			}
		}
		for i, buf := range a.Buffers() {
			ob := b.Buffers()[i]
			if (buf.I != nil && *buf.I != *ob.I) || (buf.F != nil && !slices.Equal(buf.F.Data, ob.F.Data)) {
				t.Errorf("%s: buffer %s differs after load", norm, buf.Name)
			}
		}
		x := randImages(a.Cfg, 2, 3)
		ya, _ := a.Forward(x, nn.Eval)
		ya = ya.Clone()
		yb, _ := b.Forward(x, nn.Eval)
		if !slices.Equal(ya.Data, yb.Data) {
			t.Errorf("%s: logits differ after round trip", norm)
		}
	}
}

// TestLoadStateErrors: missing, unexpected and mis-shaped keys all appear
// in one error, and the model is left untouched.
func TestLoadStateErrors(t *testing.T) {
	a := miniVariant(t, "prepbn", "sla", false, 1)
	b := miniVariant(t, "prepbn", "sla", false, 2)
	sd := models.StateDict(a)
	delete(sd, "blocks.1.mlp.fc2.bias")
	delete(sd, "norm.norm2.bn.running_var")
	sd["blocks.0.attn.scale"] = &checkpoint.Entry{Shape: []int{1, 1, 64}, F32: make([]float32, 64)}
	sd["pos_embed"] = &checkpoint.Entry{Shape: []int{1, 50, 64}, F32: make([]float32, 50*64)}
	before := slices.Clone(b.Params()[0].W.Data)
	_, err := models.LoadState(b, sd)
	if err == nil {
		t.Fatal("LoadState accepted a broken state dict")
	}
	msg := err.Error()
	for _, want := range []string{"blocks.1.mlp.fc2.bias", "norm.norm2.bn.running_var", "blocks.0.attn.scale", "pos_embed", "[1 50 64]", "missing 2", "unexpected 1", "mis-shaped 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if !slices.Equal(before, b.Params()[0].W.Data) {
		t.Error("a failed LoadState modified the model")
	}
}

// TestLoadStateLayouts: a LinearNorm model accepts bare RepBN keys (as in
// DeiT-T-PRepBN) and a RepBN model accepts LinearNorm keys; in both cases
// the eval logits equal the source model's, since eval-mode LinearNorm is
// its RepBN branch. A "model." wrapper prefix is removed.
func TestLoadStateLayouts(t *testing.T) {
	for _, attn := range []string{"sla", "softmax"} {
		cls := attn == "softmax"
		rb := miniVariant(t, "repbn", attn, cls, 1)
		ln := miniVariant(t, "prepbn", attn, cls, 2)
		x := randImages(rb.Cfg, 2, 3)

		// bare RepBN -> LinearNorm
		dst := miniVariant(t, "prepbn", attn, cls, 4)
		warn, err := models.LoadState(dst, models.StateDict(rb))
		if err != nil {
			t.Fatal(err)
		}
		if len(warn) != 1 || !strings.Contains(warn[0], "bare RepBN") {
			t.Errorf("bare -> LinearNorm warnings %q", warn)
		}
		if models.Lambda(dst) != 0 {
			t.Errorf("bare -> LinearNorm: Lambda %g, want 0 (schedule finished)", models.Lambda(dst))
		}
		want, _ := rb.Forward(x, nn.Eval)
		want = want.Clone()
		got, _ := dst.Forward(x, nn.Eval)
		closeTo(t, attn+": bare RepBN state in a LinearNorm model", got.Data, want.Data, 0, 0)

		// LinearNorm (iter > 0) -> bare RepBN, wrapped in "model."
		sd := map[string]*checkpoint.Entry{}
		for k, v := range models.StateDict(ln) {
			sd["model."+k] = v
		}
		sd["model.blocks.0.norm1.iter"].I64[0] = 17
		dst = miniVariant(t, "repbn", attn, cls, 5)
		warn, err = models.LoadState(dst, sd)
		if err != nil {
			t.Fatal(err)
		}
		if len(warn) == 0 || !strings.Contains(strings.Join(warn, "\n"), "blocks.0.norm1.iter = 17") {
			t.Errorf("LinearNorm -> bare warnings %q", warn)
		}
		want, _ = ln.Forward(x, nn.Eval)
		want = want.Clone()
		got, _ = dst.Forward(x, nn.Eval)
		closeTo(t, attn+": LinearNorm state in a RepBN model", got.Data, want.Data, 0, 0)
	}
}

// TestLoadStateOptionalCounters: num_batches_tracked and warm may be absent
// (older PyTorch, detection LinearNorm); they default to 0 with a warning.
func TestLoadStateOptionalCounters(t *testing.T) {
	a := miniVariant(t, "prepbn", "sla", false, 1)
	b := miniVariant(t, "prepbn", "sla", false, 2)
	sd := models.StateDict(a)
	n := 0
	for k := range sd {
		if strings.HasSuffix(k, ".num_batches_tracked") || strings.HasSuffix(k, ".warm") {
			delete(sd, k)
			n++
		}
	}
	warn, err := models.LoadState(b, sd)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(warn, "\n"), fmt.Sprintf("%d counters absent", n)) {
		t.Errorf("warnings %q do not report %d defaulted counters", warn, n)
	}
	for _, buf := range b.Buffers() {
		if strings.HasSuffix(buf.Name, ".num_batches_tracked") && *buf.I != 0 {
			t.Errorf("%s = %d, want 0", buf.Name, *buf.I)
		}
	}
}
