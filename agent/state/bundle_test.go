package state

import (
	"errors"
	"testing"
)

func TestPolicyRollbackProtection(t *testing.T) {
	s, path := newStore(t)
	if _, _, err := s.ActivePolicy(); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("ActivePolicy on a new file: %v", err)
	}
	steps := []struct {
		version int64
		refused bool
		active  int64
	}{
		{3, false, 3},
		{3, true, 3}, // the retained message again
		{2, true, 3}, // an old signed bundle replayed
		{7, false, 7},
		{5, true, 7},
	}
	for _, st := range steps {
		err := s.SavePolicy([]byte{byte(st.version)}, st.version)
		var rb *RollbackError
		if st.refused != errors.As(err, &rb) || (!st.refused && err != nil) {
			t.Fatalf("SavePolicy(v%d) = %v", st.version, err)
		}
		b, v, err := s.ActivePolicy()
		if err != nil || v != st.active || b[0] != byte(st.active) {
			t.Fatalf("after v%d: active %d %v %v", st.version, v, b, err)
		}
	}
	s.Close()
	s = openT(t, path, testOptions())
	var rb *RollbackError
	if err := s.SavePolicy([]byte("x"), 6); !errors.As(err, &rb) || rb.Highest != 7 {
		t.Fatalf("rollback after restart: %v", err)
	}
	if err := s.SavePolicy(nil, 8); err == nil {
		t.Error("empty bundle accepted")
	}
}
