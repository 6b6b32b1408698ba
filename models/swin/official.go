package swin

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// aliases consume the official buffers the model recomputes from its
// configuration instead of holding: each block's
// attn.relative_position_index (softmax windows) and attn_mask (shifted
// blocks). A checkpoint's copy must equal ours, so a checkpoint of another
// window layout fails to load instead of running with the wrong bias
// gather or mask. The parameters themselves carry the official names of
// slab_swin.py, swin_transformer.py (also Microsoft's original Swin
// checkpoints) and flatten_swin.py, and map 1:1.
var aliases = []models.Alias{
	{Official: "attn.relative_position_index", Check: checkRelPosIndex},
	{Official: "attn_mask", Check: checkAttnMask},
}

var blockKey = regexp.MustCompile(`^layers\.(\d+)\.blocks\.(\d+)\.`)

// mixerOf finds the block a recomputed key belongs to.
func mixerOf(m models.Model, key string) (*WindowMixer, error) {
	sm, ok := m.(*Model)
	if !ok {
		return nil, fmt.Errorf("%s: model %T is not a swin model", key, m)
	}
	g := blockKey.FindStringSubmatch(key)
	if g == nil {
		return nil, fmt.Errorf("%s: not a block buffer (want layers.I.blocks.J.…)", key)
	}
	i, _ := strconv.Atoi(g[1])
	j, _ := strconv.Atoi(g[2])
	if i >= len(sm.Stages.List) || j >= len(sm.Stages.List[i].Blocks) {
		return nil, fmt.Errorf("%s: the model has no block %d in stage %d (depths %v)", key, j, i, sm.Cfg.Depths)
	}
	return sm.Mixer(i, j), nil
}

// checkRelPosIndex compares an official relative_position_index with the
// one the model's window attention gathers its bias through.
func checkRelPosIndex(m models.Model, key string, e *checkpoint.Entry) error {
	mx, err := mixerOf(m, key)
	if err != nil {
		return err
	}
	if mx.Softmax == nil {
		return fmt.Errorf("%s: the checkpoint has window softmax attention here, the model linear attention (check the model name / stage letters)", key)
	}
	want := mx.Softmax.RelPos.Index
	n := mx.Window * mx.Window
	if len(e.Shape) != 2 || e.Shape[0] != n || e.Shape[1] != n {
		return fmt.Errorf("%s: checkpoint %v, model [%d %d] (window %d)", key, e.Shape, n, n, mx.Window)
	}
	got := e.Int64s()
	for k, v := range want {
		if got[k] != int64(v) {
			return fmt.Errorf("%s: element %d is %d, the model's index has %d", key, k, got[k], v)
		}
	}
	return nil
}

// checkAttnMask compares an official shifted-window attn_mask with the
// model's.
func checkAttnMask(m models.Model, key string, e *checkpoint.Entry) error {
	mx, err := mixerOf(m, key)
	if err != nil {
		return err
	}
	if mx.Mask == nil {
		return fmt.Errorf("%s: the checkpoint has a shifted-window mask here, the model's block is not shifted (window %d)", key, mx.Window)
	}
	if !shapeEq(e.Shape, mx.Mask.Shape) {
		return fmt.Errorf("%s: checkpoint %v, model %v", key, e.Shape, mx.Mask.Shape)
	}
	t, err := e.Tensor(key)
	if err != nil {
		return err
	}
	for k, v := range mx.Mask.Data {
		if t.Data[k] != v {
			return fmt.Errorf("%s: element %d is %g, the model's mask has %g", key, k, t.Data[k], v)
		}
	}
	return nil
}

func shapeEq(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var _ models.Classifier = (*Model)(nil)
var _ nn.Module = (*WindowMixer)(nil)
