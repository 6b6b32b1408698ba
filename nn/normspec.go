package nn

import (
	"fmt"
	"math"
)

// Norm kinds a NormSpec builds. The strings are the ones flags, configs
// and checkpoints use.
const (
	// NormLayerNorm is LayerNorm (weight, bias).
	NormLayerNorm = "layernorm"
	// NormRMSNorm is LLaMA's RMSNorm (weight only).
	NormRMSNorm = "rmsnorm"
	// NormBatchNorm is a plain BatchNorm over channels (no alpha).
	NormBatchNorm = "batchnorm"
	// NormRepBN is BN(x) + alpha*x with no schedule.
	NormRepBN = "repbn"
	// NormPRepBN is LinearNorm: the progressive move from Base (LayerNorm
	// or RMSNorm) to RepBN.
	NormPRepBN = "prepbn"
	// NormNone is the deploy form of a folded model: every norm is Identity.
	NormNone = "none"
)

// RepBN initialisations (docs/method.md 1.1, 6.1).
const (
	// InitVision starts RepBN at alpha = 1, gamma = 1, beta = 0, as every
	// official vision model does.
	InitVision = "vision"
	// InitOfficialLLaMA starts alpha, gamma and beta at 0 (the official
	// LLaMA-350M), so RepBN outputs 0 until it has trained.
	InitOfficialLLaMA = "official"
)

// Schedule periods of LinearNorm (docs/method.md 1.2, 6.1).
const (
	// EveryVision advances the schedule on every training call.
	EveryVision = 1
	// EveryLLaMA advances it once per 16 training calls, with a num_step
	// buffer counting them.
	EveryLLaMA = 16
)

// NormSpec describes every norm of a model, so that one factory builds
// LayerNorm, RMSNorm, BatchNorm, RepBN and LinearNorm for every family and
// a family never switches over norm types itself. The zero value of a
// field means the default named in its comment.
type NormSpec struct {
	// Kind is one of the Norm* constants.
	Kind string `json:"kind"`
	// Eps is the LayerNorm / RMSNorm epsilon (1e-6 DeiT, PVT, LLaMA; 1e-5
	// Swin, CSwin).
	Eps float32 `json:"eps"`
	// BNEps is the BatchNorm epsilon (default 1e-5, PyTorch's; LLaMA uses
	// its RMS epsilon). BNMomentum defaults to 0.1.
	BNEps      float32 `json:"bn_eps,omitempty"`
	BNMomentum float32 `json:"bn_momentum,omitempty"`
	// Base is PRepBN's first branch: NormLayerNorm (default) or NormRMSNorm.
	Base string `json:"base,omitempty"`
	// Warm and Step are LinearNorm's warm-up calls and schedule length T,
	// both in units of Every training calls.
	Warm int64 `json:"warm,omitempty"`
	Step int64 `json:"step,omitempty"`
	// Every is the schedule period (default EveryVision).
	Every int64 `json:"every,omitempty"`
	// Init is the RepBN initialisation (default InitVision).
	Init string `json:"init,omitempty"`
	// NoCopy lets norms keep a reference to their training input instead of
	// a copy: the model promises to leave every norm input unchanged until
	// Backward.
	NoCopy bool `json:"-"`
}

// Validate reports the first unusable field, naming it.
func (s NormSpec) Validate() error {
	switch s.Kind {
	case NormLayerNorm, NormRMSNorm, NormPRepBN:
		if !(s.Eps > 0) || math.IsInf(float64(s.Eps), 0) {
			return fmt.Errorf("norm %s: eps %g must be a positive number", s.Kind, s.Eps)
		}
	case NormBatchNorm, NormRepBN, NormNone:
	default:
		return fmt.Errorf("unknown norm %q (want layernorm, rmsnorm, batchnorm, repbn, prepbn or none)", s.Kind)
	}
	if s.BNEps < 0 || s.BNMomentum < 0 || s.BNMomentum > 1 {
		return fmt.Errorf("norm %s: BN eps %g must be >= 0 and momentum %g in [0, 1]", s.Kind, s.BNEps, s.BNMomentum)
	}
	switch s.Init {
	case "", InitVision, InitOfficialLLaMA:
	default:
		return fmt.Errorf("norm %s: RepBN init %q is not %s or %s", s.Kind, s.Init, InitVision, InitOfficialLLaMA)
	}
	if s.Kind == NormPRepBN {
		switch s.Base {
		case "", NormLayerNorm, NormRMSNorm:
		default:
			return fmt.Errorf("norm prepbn: base %q is not layernorm or rmsnorm", s.Base)
		}
		if s.Step <= 0 || s.Warm < 0 || s.Every < 0 {
			return fmt.Errorf("norm prepbn needs step > 0, warm >= 0 and every >= 0 (got step %d, warm %d, every %d)", s.Step, s.Warm, s.Every)
		}
	}
	return nil
}

// Foldable reports whether the norm is an affine map in evaluation, so
// that it folds into a neighbouring linear layer (docs/method.md 2.1).
func (s NormSpec) Foldable() bool {
	switch s.Kind {
	case NormBatchNorm, NormRepBN, NormPRepBN:
		return true
	}
	return false
}

func (s NormSpec) bnEps() float32 {
	if s.BNEps > 0 {
		return s.BNEps
	}
	return 1e-5
}

func (s NormSpec) bnMomentum() float32 {
	if s.BNMomentum > 0 {
		return s.BNMomentum
	}
	return 0.1
}

// New builds the norm over dim channels with its parameters and buffers
// under the state-dict prefix name (name.weight, name.norm2.alpha, ...).
// It panics on a spec Validate rejects: models validate their config first.
func (s NormSpec) New(name string, dim int) Norm {
	if err := s.Validate(); err != nil {
		panic(fmt.Sprintf("nn.NormSpec.New(%s): %v", name, err))
	}
	switch s.Kind {
	case NormLayerNorm:
		return s.layerNorm(name, dim)
	case NormRMSNorm:
		return NewRMSNorm(name, dim, s.Eps)
	case NormBatchNorm:
		b := NewBatchNorm(name, dim, s.bnEps(), s.bnMomentum())
		b.NoCopy = s.NoCopy
		return b
	case NormRepBN:
		return s.repBN(name, dim)
	case NormPRepBN:
		var base Norm
		if s.Base == NormRMSNorm {
			base = NewRMSNorm(name+".norm1", dim, s.Eps)
		} else {
			base = s.layerNorm(name+".norm1", dim)
		}
		l := NewLinearNorm(name, base, s.repBN(name+".norm2", dim), s.Warm, s.Step)
		l.Every = max(s.Every, EveryVision)
		return l
	}
	return Identity{}
}

func (s NormSpec) layerNorm(name string, dim int) *LayerNorm {
	l := NewLayerNorm(name, dim, s.Eps)
	l.NoCopy = s.NoCopy
	return l
}

func (s NormSpec) repBN(name string, dim int) *RepBN {
	var a, g float32 = 1, 1
	if s.Init == InitOfficialLLaMA {
		a, g = 0, 0
	}
	r := NewRepBN(name, dim, s.bnEps(), a, g)
	r.BN.Momentum = s.bnMomentum()
	r.BN.NoCopy = s.NoCopy
	return r
}
