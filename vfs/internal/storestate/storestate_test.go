package storestate

import (
	"slices"
	"strings"
	"testing"
)

// apply checks and applies a commit to lsn with count pages writing nos.
func apply(t *testing.T, s *State, lsn uint64, count uint32, nos ...uint32) Change {
	t.Helper()
	if err := s.Check(lsn, count, nos); err != nil {
		t.Fatalf("check LSN %d: %v", lsn, err)
	}
	c := s.Change(lsn, count, nos)
	s.Apply(c)
	return c
}

func wantChanged(t *testing.T, s *State, since uint64, want ...uint32) {
	t.Helper()
	if got := s.ChangedSince(since); !slices.Equal(got, want) {
		t.Fatalf("ChangedSince(%d) = %v, want %v", since, got, want)
	}
}

func TestGrowthMarksNewPagesChanged(t *testing.T) {
	var s State
	apply(t, &s, 1, 2, 1, 2)
	c := apply(t, &s, 5, 6, 2, 5)
	if got, want := c.Changed, []uint32{2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("Changed = %v, want %v", got, want)
	}
	if got, want := slices.Collect(c.Grown()), []uint32{3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("Grown = %v, want %v", got, want)
	}
	for no, want := range map[uint32]uint64{1: 1, 2: 5, 3: 5, 4: 5, 5: 5, 6: 5} {
		if got := s.PageLSN(no); got != want {
			t.Errorf("PageLSN(%d) = %d, want %d", no, got, want)
		}
	}
	if got, want := s.LSN(), uint64(5); got != want {
		t.Fatalf("LSN = %d, want %d", got, want)
	}
	if got, want := s.PageCount(), uint32(6); got != want {
		t.Fatalf("PageCount = %d, want %d", got, want)
	}
	wantChanged(t, &s, 0, 1, 2, 3, 4, 5, 6)
	wantChanged(t, &s, 1, 2, 3, 4, 5, 6)
	wantChanged(t, &s, 5)
}

func TestShrinkThenGrow(t *testing.T) {
	var s State
	apply(t, &s, 1, 4, 1, 2, 3, 4)
	s.ResetLowWater()
	c := apply(t, &s, 2, 2)
	if !c.Shrinks() || len(c.Changed) != 0 {
		t.Fatalf("shrink: Shrinks %v, Changed %v", c.Shrinks(), c.Changed)
	}
	if got, want := slices.Collect(c.Dropped()), []uint32{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("Dropped = %v, want %v", got, want)
	}
	wantChanged(t, &s, 0, 1, 2)
	wantChanged(t, &s, 1)
	if got := s.PageLSN(3); got != 0 {
		t.Fatalf("PageLSN(3) after shrink = %d, want 0", got)
	}

	// Grow back without writing page 3: it is new (zeros) at LSN 3, so a
	// replica at LSN 1, which still has page 3's old bytes, must get it.
	apply(t, &s, 3, 4, 4)
	wantChanged(t, &s, 0, 1, 2, 3, 4)
	wantChanged(t, &s, 1, 3, 4)
	wantChanged(t, &s, 2, 3, 4)
	wantChanged(t, &s, 3)
	if got, want := s.LowWater(), uint32(2); got != want {
		t.Fatalf("LowWater = %d, want %d", got, want)
	}
	s.ResetLowWater()
	if got, want := s.LowWater(), uint32(4); got != want {
		t.Fatalf("LowWater after reset = %d, want %d", got, want)
	}
}

func TestPageLSNAfter(t *testing.T) {
	var s State
	apply(t, &s, 1, 3, 1, 2, 3)
	apply(t, &s, 2, 3, 2)
	c := s.Change(7, 5, []uint32{1, 5})
	for no, want := range map[uint32]uint64{0: 0, 1: 7, 2: 2, 3: 1, 4: 7, 5: 7, 6: 0} {
		if got := s.PageLSNAfter(c, no); got != want {
			t.Errorf("PageLSNAfter(%d) = %d, want %d", no, got, want)
		}
	}
	if got := s.LSN(); got != 2 {
		t.Fatalf("Change applied early: LSN = %d", got)
	}
	shrink := s.Change(8, 2, nil)
	if got := s.PageLSNAfter(shrink, 3); got != 0 {
		t.Fatalf("PageLSNAfter of a dropped page = %d, want 0", got)
	}
}

func TestLoad(t *testing.T) {
	s := Load(9, 3, []uint64{4, 9, 2})
	if s.LSN() != 9 || s.PageCount() != 3 || s.LowWater() != 3 {
		t.Fatalf("Load: LSN %d, count %d, low water %d", s.LSN(), s.PageCount(), s.LowWater())
	}
	wantChanged(t, &s, 3, 1, 2)
	if got, want := s.Snapshot(), []uint64{4, 9, 2}; !slices.Equal(got, want) {
		t.Fatalf("Snapshot = %v, want %v", got, want)
	}
}

func TestCheck(t *testing.T) {
	s := Load(5, 0, nil)
	for name, tc := range map[string]struct {
		lsn   uint64
		count uint32
		nos   []uint32
		want  string
	}{
		"LSN equal":      {5, 1, nil, "LSN 5 does not follow 5"},
		"LSN lower":      {4, 1, nil, "LSN 4 does not follow 5"},
		"page zero":      {6, 2, []uint32{0}, "page 0 outside 1..2"},
		"page above":     {6, 2, []uint32{1, 3}, "page 3 outside 1..2"},
		"page repeated":  {6, 2, []uint32{1, 1}, "page 1 out of order"},
		"page backwards": {6, 3, []uint32{2, 1}, "page 1 out of order"},
		"ok":             {6, 3, []uint32{1, 3}, ""},
		"ok empty":       {6, 0, nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := s.Check(tc.lsn, tc.count, tc.nos)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestApplyRefusesStaleChange(t *testing.T) {
	var s State
	c := s.Change(1, 1, []uint32{1})
	s.Apply(c)
	defer func() {
		if recover() == nil {
			t.Fatal("applying a change twice did not panic")
		}
	}()
	s.Apply(c)
}

func TestForget(t *testing.T) {
	s := Load(9, 3, []uint64{4, 9, 2})
	s.Forget()
	if s.LSN() != 9 || s.PageCount() != 3 {
		t.Fatalf("Forget: LSN %d, count %d, want 9, 3", s.LSN(), s.PageCount())
	}
	wantChanged(t, &s, 0)
}
