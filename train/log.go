package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// logLine is one JSON line of the curve log: exactly one of Step and Epoch.
type logLine struct {
	Kind  string       `json:"kind"` // "step" or "epoch"
	Step  *StepRecord  `json:"step,omitempty"`
	Epoch *EpochRecord `json:"epoch,omitempty"`
}

// AppendLog appends step and epoch records to the JSON-lines curve log at
// path (created if missing).
func AppendLog(path string, steps []StepRecord, epochs []EpochRecord) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range steps {
		if err := enc.Encode(logLine{Kind: "step", Step: &steps[i]}); err != nil {
			f.Close()
			return err
		}
	}
	for i := range epochs {
		if err := enc.Encode(logLine{Kind: "epoch", Epoch: &epochs[i]}); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadLog reads a curve log written by AppendLog, keeping records up to
// step upTo (a resumed run rewrites what followed its checkpoint); a
// missing file is an empty log.
func ReadLog(path string, upTo int64) ([]StepRecord, []EpochRecord, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var steps []StepRecord
	var epochs []EpochRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		switch {
		case l.Step != nil && l.Step.Step <= upTo:
			steps = append(steps, *l.Step)
		case l.Epoch != nil && l.Epoch.Step <= upTo:
			epochs = append(epochs, *l.Epoch)
		}
	}
	return steps, epochs, sc.Err()
}
