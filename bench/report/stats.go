package report

import (
	"math"
	"slices"
	"time"
)

// Durations summarizes latency samples as a distribution in milliseconds.
func Durations(ds []time.Duration) Stat {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	return Dist("ms", ms)
}

// Dist summarizes samples, in unit, as a distribution. Percentiles are
// nearest-rank: P99 of 100 samples is the 99th smallest.
func Dist(unit string, samples []float64) Stat {
	s := Stat{Kind: KindDist, Unit: unit, N: len(samples)}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var sum float64
	for _, v := range sorted {
		sum += v
	}
	s.Mean = sum / float64(len(sorted))
	s.P50 = Percentile(sorted, 50)
	s.P95 = Percentile(sorted, 95)
	s.P99 = Percentile(sorted, 99)
	s.Max = sorted[len(sorted)-1]
	s.Quantiles = make([]float64, 101)
	for p := range s.Quantiles {
		s.Quantiles[p] = Percentile(sorted, float64(p))
	}
	return s
}

// Percentile returns the nearest-rank p-th percentile of sorted, which must
// be sorted ascending and not empty. Percentile 0 is the minimum.
func Percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Value is a single figure in unit.
func Value(unit string, v float64) Stat {
	return Stat{Kind: KindValue, Unit: unit, Value: v}
}
