package nn

// Mode says how a forward pass runs. It is passed down from the model to
// every layer whose behaviour depends on it, so that no model needs a
// switch over its norm types.
type Mode uint8

const (
	// Eval uses running statistics, no drop path, and leaves every
	// schedule where it is.
	Eval Mode = iota
	// Train uses batch statistics (updating the running ones), drop path,
	// keeps what Backward needs and advances the PRepBN schedule by one call.
	Train
	// Recalibrate is the BN-statistics pass that ends a PRepBN training
	// (docs/method.md 1.4): the model runs as in Eval (a LinearNorm is its
	// RepBN, no drop path, schedules frozen) except that every BatchNorm
	// normalises with batch statistics and updates its running ones.
	Recalibrate
)

// String names the mode as flags and logs spell it.
func (m Mode) String() string {
	switch m {
	case Eval:
		return "eval"
	case Train:
		return "train"
	case Recalibrate:
		return "recalibrate"
	}
	return "mode?"
}

// Training reports whether m is Train: the only mode whose activations
// Backward may differentiate.
func (m Mode) Training() bool { return m == Train }

// batchStats reports whether a BatchNorm uses (and updates) batch
// statistics in mode m.
func (m Mode) batchStats() bool { return m != Eval }

// ModeOf is Train for true and Eval for false: the mode of a caller that
// only distinguishes training from evaluation.
func ModeOf(train bool) Mode {
	if train {
		return Train
	}
	return Eval
}
