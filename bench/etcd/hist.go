package main

// A port of src/bench/hist.c (keep the two identical): a log-bucketed
// latency histogram of nanoseconds. Values below 2^histSubBits map to
// themselves; a larger value with its top bit at position e maps to row
// e - histSubBits + 1 and, within the row, to its next histSubBits bits, so
// each bucket spans at most 1/64 (1.6 %) of its value. Quantiles report the
// upper edge of the bucket, never above the true maximum.

import "math/bits"

const (
	histSubBits     = 6
	histSubCount    = 1 << histSubBits
	histExpMax      = 42
	histBucketCount = (histExpMax - histSubBits + 1) * histSubCount
)

type hist struct {
	counts [histBucketCount]uint64
	count  uint64
	maxNs  uint64
	minNs  uint64
	sumNs  float64
}

func newHist() *hist { return &hist{minNs: ^uint64(0)} }

func bucketOf(v uint64) uint32 {
	if v < histSubCount {
		return uint32(v)
	}
	top := uint32(63 - bits.LeadingZeros64(v))
	if top > histExpMax {
		return histBucketCount - 1
	}
	shift := top - histSubBits
	row := shift + 1
	sub := uint32(v>>shift) & (histSubCount - 1)
	return row*histSubCount + sub
}

func bucketUpper(i uint32) uint64 {
	row := i / histSubCount
	sub := i % histSubCount
	if row == 0 {
		return uint64(sub)
	}
	shift := row - 1
	base := (uint64(histSubCount) | uint64(sub)) << shift
	return base + (uint64(1) << shift) - 1
}

func (h *hist) record(v uint64) {
	h.counts[bucketOf(v)]++
	h.count++
	h.sumNs += float64(v)
	if v > h.maxNs {
		h.maxNs = v
	}
	if v < h.minNs {
		h.minNs = v
	}
}

func (h *hist) merge(o *hist) {
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.count += o.count
	h.sumNs += o.sumNs
	if o.maxNs > h.maxNs {
		h.maxNs = o.maxNs
	}
	if o.minNs < h.minNs {
		h.minNs = o.minNs
	}
}

func (h *hist) quantile(fraction float64) uint64 {
	if h.count == 0 {
		return 0
	}
	if fraction >= 1.0 {
		return h.maxNs
	}
	rank := uint64(fraction * float64(h.count))
	if float64(rank) < fraction*float64(h.count) {
		rank++
	}
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i := uint32(0); i < histBucketCount; i++ {
		seen += h.counts[i]
		if seen >= rank {
			u := bucketUpper(i)
			if u < h.maxNs {
				return u
			}
			return h.maxNs
		}
	}
	return h.maxNs
}
