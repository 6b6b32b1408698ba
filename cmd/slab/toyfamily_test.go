package main

// A whole model family in one file: the contract a family fulfils, and the
// proof that the commands serve a family they have never heard of. The toy
// is a patch embedding, one norm, mean pooling and a linear head.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

type toyConfig struct{ Name, Norm string }

func (c *toyConfig) Validate() error   { return c.NormSpec().Validate() }
func (c *toyConfig) ModelName() string { return c.Name }
func (c *toyConfig) Summary() string   { return "toy: 7x7 patches, norm " + c.Norm + ", mean, head" }
func (c *toyConfig) Get(o string) string {
	if o == "norm" {
		return c.Norm
	}
	return ""
}
func (c *toyConfig) Set(o, v string) error {
	if o != "norm" {
		return fmt.Errorf("the toy family has no option %q", o)
	}
	c.Norm = v
	return nil
}
func (c *toyConfig) NormSpec() nn.NormSpec {
	return nn.NormSpec{Kind: c.Norm, Eps: 1e-6, Step: 100}
}
func (c *toyConfig) ParamCount() int64 { return models.NumParams(newToy(c, 0)) }
func (c *toyConfig) FLOPsByLayer() map[string]int64 {
	return map[string]int64{"conv": 2 * 16 * 49 * 32, "linear": 2 * 32 * 10}
}
func (c *toyConfig) FLOPs() int64 { return 2*16*49*32 + 2*32*10 }

type toyNet struct {
	cfg   toyConfig
	embed *nn.PatchEmbed
	norm  nn.Norm
	pool  nn.MeanTokens
	head  *nn.Linear
}

func newToy(c *toyConfig, seed uint64) *toyNet {
	r := rand.New(rand.NewPCG(seed, 1))
	m := &toyNet{cfg: *c, embed: nn.NewPatchEmbed("embed", 1, 32, 7), norm: c.NormSpec().New("norm", 32),
		head: nn.NewLinear("head", 32, 10, true)}
	nn.Uniform(m.embed.Weight.W, 1.0/7, r)
	nn.TruncNormal(m.head.Weight.W, 0.02, r)
	return m
}

func (m *toyNet) Family() string            { return "toy" }
func (m *toyNet) Config() models.Config     { return &m.cfg }
func (m *toyNet) InputShape() (c, h, w int) { return 1, 28, 28 }
func (m *toyNet) Classes() int              { return 10 }
func (m *toyNet) SetDropPathSeed(uint64)    {}
func (m *toyNet) DropGrads()                {}
func (m *toyNet) Buffers() []*nn.Buffer     { return m.norm.Buffers() }
func (m *toyNet) Norms() []nn.NormSlot      { return []nn.NormSlot{{Name: "norm", Norm: &m.norm}} }
func (m *toyNet) Folded()                   { m.cfg.Norm = nn.NormNone }
func (m *toyNet) FoldSites() ([]nn.FoldSite, error) {
	return []nn.FoldSite{{Slot: m.Norms()[0], Into: []*nn.Linear{m.head}}}, nil // mean pooling commutes
}
func (m *toyNet) Params() []*nn.Param {
	return append(append(m.embed.Params(), m.norm.Params()...), m.head.Params()...)
}
func (m *toyNet) Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error) {
	return m.head.Forward(m.pool.Forward(m.norm.Forward(m.embed.Forward(x), mode))), nil
}
func (m *toyNet) Backward(dy *tensor.Tensor) {
	m.embed.Backward(m.norm.Backward(m.pool.Backward(m.head.Backward(dy))))
}

func init() {
	models.Register(&models.Family{Name: "toy", Task: models.TaskClassify, Doc: "a test's toy classifier",
		NewConfig: func() models.Config { return &toyConfig{} },
		Build: func(c models.Config, seed uint64, _ bool) (models.Model, error) {
			return newToy(c.(*toyConfig), seed), nil
		},
	}, map[string]models.Config{"toy_28": &toyConfig{Name: "toy_28", Norm: nn.NormPRepBN}})
}

// TestToyFamily runs the family above through train, fuse, eval and run on
// real Fashion-MNIST images: it learns, folds exactly and evaluates the same
// folded and unfolded.
func TestToyFamily(t *testing.T) {
	dir := t.TempDir()
	var tr trainResult
	oneJSON(t, runOK(t, "train", "--model", "toy_28", "--epochs", "2", "--batch", "32", "--lr", "1e-2", "--limit-train", "1024",
		"--limit-test", "500", "--threads", "2", "--out", dir, "--json"), &tr)
	if tr.TestAcc < 0.3 || tr.Recalibrate != 1 || tr.Lambda != 0 {
		t.Errorf("train: accuracy %.3f (want >= 0.3, three times chance), %d re-calibration passes, lambda %g", tr.TestAcc, tr.Recalibrate, tr.Lambda)
	}
	ckpt, folded := filepath.Join(dir, "ckpt.safetensors"), filepath.Join(dir, "folded.safetensors")
	var fr fuseResult
	oneJSON(t, runOK(t, "fuse", "--weights", ckpt, "--out", folded, "--json"), &fr)
	if fr.Family != "toy" || fr.MaxAbsDiff > 1e-5*math.Max(1, fr.MaxLogit) || fr.FusedParams >= fr.Params {
		t.Errorf("fuse: %+v", fr)
	}
	var e1, e2 evalResult
	oneJSON(t, runOK(t, "eval", "--weights", ckpt, "--limit", "500", "--json"), &e1)
	oneJSON(t, runOK(t, "eval", "--weights", folded, "--limit", "500", "--json"), &e2)
	if e1.Accuracy != e2.Accuracy || e1.Accuracy != tr.TestAcc || !e2.Fused {
		t.Errorf("eval: unfolded %.4f, folded %.4f (fused %v), train reported %.4f", e1.Accuracy, e2.Accuracy, e2.Fused, tr.TestAcc)
	}
	in := checkpoint.NewFile()
	x := tensor.New(2, 1, 28, 28)
	for i := range x.Data {
		x.Data[i] = float32(i%13) / 13
	}
	in.Set("input", x)
	inPath, outPath := filepath.Join(dir, "in.safetensors"), filepath.Join(dir, "out.safetensors")
	if err := checkpoint.Write(inPath, in); err != nil {
		t.Fatal(err)
	}
	var rr runResult
	oneJSON(t, runOK(t, "run", "--weights", folded, "--input", inPath, "--output", outPath, "--json"), &rr)
	if rr.Model != "toy_28" || rr.Images != 2 || rr.Classes != 10 {
		t.Errorf("run: %+v", rr)
	}
	t.Logf("toy_28: accuracy %.3f (folded %.3f), fold max logit diff %.2g", e1.Accuracy, e2.Accuracy, fr.MaxAbsDiff)
}

// runOK runs a command in-process and fails the test on error.
func runOK(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := runIn(t, args...)
	if err != nil {
		t.Fatalf("slab %v: %v", args, err)
	}
	return []byte(out)
}
