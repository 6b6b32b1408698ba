package plot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slabml/slab/train"
)

func TestWritePlot(t *testing.T) {
	var steps []train.StepRecord
	for i := 1; i <= 40; i++ {
		steps = append(steps, train.StepRecord{Step: int64(i), Epoch: (i-1)/20 + 1, Loss: 2 / float64(i), Lambda: 1 - float64(i)/40})
	}
	epochs := []train.EpochRecord{{Epoch: 1, Step: 20, TestAcc: 0.5}, {Epoch: 2, Step: 40, TestAcc: 0.7}}
	png := filepath.Join(t.TempDir(), "curves.png")
	if err := WritePlot(png, "toy", steps, epochs); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(png)
	b, rerr := os.ReadFile(png)
	if err != nil || rerr != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("plot: %d bytes, %v %v", len(b), err, rerr)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("plot written with mode %v, want 0644 like the other run files", st.Mode().Perm())
	}
}
