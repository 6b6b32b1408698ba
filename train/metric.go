package train

import (
	"encoding/json"
	"math"
)

// Metric is a float64 that encodes as JSON null when it is NaN or
// infinite: encoding/json refuses those values, and a validation loss is
// legitimately +Inf or NaN while a PRepBN model's eval-mode RepBN has no
// statistics yet, which must not cost a run its JSON summary.
type Metric float64

// MarshalJSON encodes m as a number, or null when it is not finite.
func (m Metric) MarshalJSON() ([]byte, error) {
	f := float64(m)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}
