package train

import "math"

// MaxBatch bounds every batch size a recipe or an evaluation takes (images
// or sequences per step): far above what fits a CPU's memory at any model
// size here, it turns a mistyped size into an error naming the flag
// before anything is allocated.
const MaxBatch = 65536

// MaxSeq bounds a language model's tokens per sequence the same way.
const MaxSeq = 1 << 20

// finite reports whether x is a number other than ±Inf.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
