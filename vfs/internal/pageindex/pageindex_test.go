package pageindex

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAgainstModel drives the index and a plain map with the same random
// operations and compares every answer.
func TestAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		x := &Index{}
		model := map[uint32]uint64{}
		var lsn uint64
		for step := 0; step < 300; step++ {
			switch r.IntN(10) {
			case 0:
				count := uint32(r.IntN(40))
				x.Truncate(count)
				for no := range model {
					if no > count {
						delete(model, no)
					}
				}
			case 1:
				lsns := make([]uint64, r.IntN(30))
				model = map[uint32]uint64{}
				for i := range lsns {
					lsns[i] = uint64(r.IntN(int(lsn) + 1))
					if lsns[i] > 0 {
						model[uint32(i+1)] = lsns[i]
					}
				}
				x = Build(lsns)
			default:
				lsn++
				for range r.IntN(4) + 1 {
					no := uint32(r.IntN(40) + 1)
					x.Touch(no, lsn)
					model[no] = lsn
				}
			}
			since := uint64(r.IntN(int(lsn) + 1))
			var want []uint32
			for no, l := range model {
				if l > since {
					want = append(want, no)
				}
			}
			slices.Sort(want)
			if got := x.ChangedSince(since); !slices.Equal(got, want) {
				t.Fatalf("seed=%d step=%d: ChangedSince(%d) = %v, want %v", seed, step, since, got, want)
			}
		}
	}
}
