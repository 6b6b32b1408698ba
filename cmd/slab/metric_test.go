package main

import (
	"encoding/json"
	"math"
	"testing"
)

// A diverged or not-yet-calibrated validation loss must not cost a run its
// one JSON object (encoding/json rejects NaN and Inf).
func TestMetricJSON(t *testing.T) {
	pts := []lmPt{{Step: 200, Loss: 5.9, ValLoss: metric(math.Inf(1))}, {Step: 400, Loss: 5.5, ValLoss: metric(math.NaN())}, {Step: 600, Loss: 5.2, ValLoss: 5.25}}
	b, err := json.Marshal(pts)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"step":200,"train_loss":5.9,"val_loss":null},{"step":400,"train_loss":5.5,"val_loss":null},{"step":600,"train_loss":5.2,"val_loss":5.25}]`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	var back []lmPt
	if err := json.Unmarshal(b, &back); err != nil || back[2].ValLoss != 5.25 {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}
