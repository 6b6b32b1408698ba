package slab

// GenerateReport is one generation as slab generate reports it (its JSON).
type GenerateReport struct {
	Prompt       string  `json:"prompt"`
	Text         string  `json:"text"`
	Tokens       int     `json:"tokens"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_s"`
	Folded       bool    `json:"folded"`
}
