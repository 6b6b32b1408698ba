package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// logLine is one JSON line of the curve log: exactly one of Step and Epoch.
type logLine struct {
	Kind  string       `json:"kind"` // "step" or "epoch"
	Step  *StepRecord  `json:"step,omitempty"`
	Epoch *EpochRecord `json:"epoch,omitempty"`
}

// AppendLog appends step and epoch records to the JSON-lines curve log at
// path (created if missing), in one write.
func AppendLog(path string, steps []StepRecord, epochs []EpochRecord) error {
	var b bytes.Buffer
	if err := encodeLog(&b, steps, epochs); err != nil {
		return err
	}
	return appendFile(path, b.Bytes())
}

// encodeLog writes records as curve-log lines.
func encodeLog(w io.Writer, steps []StepRecord, epochs []EpochRecord) error {
	enc := json.NewEncoder(w)
	for i := range steps {
		if err := enc.Encode(logLine{Kind: "step", Step: &steps[i]}); err != nil {
			return err
		}
	}
	for i := range epochs {
		if err := enc.Encode(logLine{Kind: "epoch", Epoch: &epochs[i]}); err != nil {
			return err
		}
	}
	return nil
}

// appendFile appends b to path with one write and syncs it, so that the
// log is on disk before the checkpoint that follows it replaces the old.
func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// completeLines is b up to its last newline: a process killed during an
// append may leave a torn last line, which the checkpoint never held.
func completeLines(b []byte) []byte {
	return b[:bytes.LastIndexByte(b, '\n')+1]
}

// ReadLog reads a curve log written by AppendLog, keeping records up to
// step upTo (a resumed run rewrites what followed its checkpoint); a
// missing file is an empty log, a torn last line is ignored.
func ReadLog(path string, upTo int64) ([]StepRecord, []EpochRecord, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var steps []StepRecord
	var epochs []EpochRecord
	sc := bufio.NewScanner(bytes.NewReader(completeLines(b)))
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
