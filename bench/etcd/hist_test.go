package main

import "testing"

// The same cases hold for src/bench/hist.c: exact below 64, then buckets of
// at most 1/64 of the value, quantiles at bucket upper edges capped at max.
func TestHist(t *testing.T) {
	for v := uint64(0); v < 64; v++ {
		if bucketUpper(bucketOf(v)) != v {
			t.Fatalf("small value %d not exact", v)
		}
	}
	for _, v := range []uint64{64, 65, 127, 128, 1000, 123456, 1 << 30, 1<<42 - 1} {
		u := bucketUpper(bucketOf(v))
		if u < v || float64(u-v) > float64(v)/64 {
			t.Fatalf("value %d -> upper %d", v, u)
		}
	}
	h := newHist()
	for v := uint64(1); v <= 1000; v++ {
		h.record(v * 1000)
	}
	if q := h.quantile(0.5); q < 500000 || q > 508000 {
		t.Fatalf("p50 %d", q)
	}
	if h.quantile(1) != 1000000 || h.quantile(0.9999) > 1000000 {
		t.Fatalf("max")
	}
}
