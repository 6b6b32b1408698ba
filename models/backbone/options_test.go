package backbone

import "testing"

func TestOptions(t *testing.T) {
	norm, step, eps := "layernorm", int64(0), float32(0)
	if err := SetNorm("prepbn", &norm, &step, &eps, 1e-5); err != nil || norm != "prepbn" || step != 1000 || eps != 1e-5 {
		t.Errorf("SetNorm prepbn: %v %s %d %g", err, norm, step, eps)
	}
	step, eps = 60000, 1e-6
	if err := SetNorm("repbn", &norm, &step, &eps, 1e-5); err != nil || norm != "repbn" || step != 60000 || eps != 1e-6 {
		t.Errorf("SetNorm repbn kept step/eps? %v %s %d %g", err, norm, step, eps)
	}
	if err := SetNorm("rmsnorm", &norm, &step, &eps, 1e-5); err == nil || norm != "repbn" {
		t.Errorf("SetNorm accepted rmsnorm for a vision model (norm now %s)", norm)
	}
	for _, bad := range []string{"-0.1", "1", "NaN", "x"} {
		if _, err := ParseDropPath(bad); err == nil {
			t.Errorf("drop-path %q accepted", bad)
		}
	}
	if r, err := ParseDropPath("0.3"); err != nil || r != 0.3 || FormatDropPath(r) != "0.3" {
		t.Errorf("drop-path 0.3: %g %v %s", r, err, FormatDropPath(r))
	}
}
