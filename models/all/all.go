// Package all links every model family of slab into a program: import it
// for its side effect (each family registers itself with package models).
// Commands and Go services import this one package instead of naming
// families; a new family is one more line here.
package all

import (
	_ "github.com/slabml/slab/models/adaptive" // adaptive-input Transformer LMs
	_ "github.com/slabml/slab/models/llama"    // LLaMA-style decoders
	_ "github.com/slabml/slab/models/swin"     // Swin, Swin-PRepBN, SLAB-Swin, FLatten-Swin
	_ "github.com/slabml/slab/models/vit"      // DeiT-style vision transformers
)
