package backbone

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slabml/slab/nn"
)

// The options every vision family's Config.Set takes the same way, parsed
// once here.

// SetNorm applies option "norm" to a vision config's fields: the kinds a
// classifier may use (layernorm, repbn, prepbn, batchnorm, or none for a
// folded model). A prepbn without a schedule length gets a placeholder the
// trainer replaces, and a LayerNorm epsilon of 0 the family's default.
func SetNorm(value string, norm *string, step *int64, lnEps *float32, defaultEps float32) error {
	switch value {
	case nn.NormLayerNorm, nn.NormRepBN, nn.NormPRepBN, nn.NormBatchNorm, nn.NormNone:
	default:
		return fmt.Errorf("norm %q is not layernorm, repbn, prepbn, batchnorm or none", value)
	}
	*norm = value
	if value == nn.NormPRepBN && *step <= 0 {
		*step = 1000 // placeholder: the trainer sets T
	}
	if *lnEps == 0 {
		*lnEps = defaultEps
	}
	return nil
}

// ParseDropPath parses option "drop-path": a rate in [0, 1).
func ParseDropPath(value string) (float32, error) {
	r, err := strconv.ParseFloat(value, 64)
	if err != nil || !(r >= 0 && r < 1) {
		return 0, fmt.Errorf("drop-path %q must be a number in [0, 1)", value)
	}
	return float32(r), nil
}

// FormatDropPath is ParseDropPath's inverse, for Config.Get.
func FormatDropPath(r float32) string { return strconv.FormatFloat(float64(r), 'g', -1, 32) }

// AttnOfStages names the attention of a stage layout for listings (one
// letter a stage: 'L' SLA, 'S' the family's softmax attention): "sla",
// "softmax", or "sla+softmax".
func AttnOfStages(stages string) string {
	switch {
	case !strings.Contains(stages, "S"):
		return "sla"
	case !strings.Contains(stages, "L"):
		return "softmax"
	}
	return "sla+softmax"
}
