package models

import "fmt"

// Bounds of every configuration dimension, shared by the families' Validate
// methods. They are far above any published model (LLaMA-65B has width
// 8192, 80 layers, 64 heads, a 32000 vocabulary) and far below what would
// overflow the int arithmetic of shapes and counts, so a checkpoint whose
// model_config claims an absurd width is refused by name before anything
// is allocated. What a config in bounds needs in memory is then checked
// against the memory available (CheckMemory).
const (
	// MaxImgSize bounds an input side in pixels.
	MaxImgSize = 4096
	// MaxChannels bounds the channels of an input image.
	MaxChannels = 64
	// MaxPatch bounds a patch or convolution kernel side.
	MaxPatch = 1024
	// MaxWidth bounds a model width (embedding or stage channels) and a
	// head width.
	MaxWidth = 16384
	// MaxHidden bounds an MLP / FFN hidden width.
	MaxHidden = 1 << 17
	// MaxMLPRatio bounds an MLP hidden width over its block width.
	MaxMLPRatio = 64
	// MaxDepth bounds the blocks of a stage or the layers of a model.
	MaxDepth = 1024
	// MaxHeads bounds attention heads.
	MaxHeads = 1024
	// MaxStages bounds the stages of a multi-scale model.
	MaxStages = 16
	// MaxClasses bounds a classifier's logits.
	MaxClasses = 1 << 20
	// MaxVocab bounds a language model's vocabulary.
	MaxVocab = 1 << 21
	// MaxContext bounds a language model's context in tokens.
	MaxContext = 1 << 17
)

// Bound is one configured dimension and its upper limit, for CheckBounds.
type Bound struct {
	Field      string
	Value, Max int
}

// Dim bounds one dimension by max.
func Dim(field string, value, max int) Bound { return Bound{Field: field, Value: value, Max: max} }

// Dims bounds every element of a per-stage list, named field[i].
func Dims(field string, values []int, max int) []Bound {
	bs := make([]Bound, len(values))
	for i, v := range values {
		bs[i] = Dim(fmt.Sprintf("%s[%d]", field, i), v, max)
	}
	return bs
}

// CheckBounds reports the first dimension above its limit, naming the
// field, its value and the limit. Families call it first in Validate (their
// own checks then reject zero and negative values) so that later
// arithmetic on the config (products of widths, token counts) cannot
// overflow.
func CheckBounds(bs ...Bound) error {
	for _, b := range bs {
		if b.Value > b.Max {
			return fmt.Errorf("%s %d is above its bound %d", b.Field, b.Value, b.Max)
		}
	}
	return nil
}
