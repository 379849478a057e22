// etcd_bench — the etcd side of the side-by-side benchmark.
//
// The same load generator as `cohort bench` (same flags, same workloads, the
// same one-line result on stdout), driving an etcd 3.4 cluster through etcd's
// own Go client (go.etcd.io/etcd/clientv3, gRPC). Built offline from Debian's
// golang-etcd-server-dev by bench/etcd/build.sh.
//
//	etcd_bench --workload write --conc 128 --conns 64 --seconds 10
//
// Model: --conc N goroutines each keep one request outstanding (closed loop).
// A clientv3.Client multiplexes every request on one gRPC (HTTP/2)
// connection per endpoint, so --conns M means M clients, each given a single
// endpoint: client j talks to member j % (number of members), and goroutine i
// uses client i % M. That gives M TCP connections spread evenly over the
// members, like the other two tools. Failover is the exception: there every
// client is given all members, as an etcd user would, and its gRPC
// round-robin balancer spreads requests over the members it can reach.
//
// Workloads (keys k<n>, n < --keys, written with a --value-size value during
// preload; then the store's history is compacted so runs start alike):
//
//	write     Put of a random key
//	read      Get (linearizable: the default; etcd confirms leadership with
//	          a ReadIndex round, batched across concurrent reads, and the
//	          member waits until it has applied up to that index)
//	lread     Get with clientv3.WithSerializable() (served by the member the
//	          client is connected to, possibly stale)
//	mixed     --read-percent (90) linearizable Gets, the rest Puts
//	failover  Puts (conc 1 by default); after --kill-after-ms runs --kill-cmd
//	          with /bin/sh (timestamp taken just before), then runs
//	          --after-ms more. failover_ms = kill -> first acknowledged Put
//	          that was *sent* after the kill command returned (a Put sent
//	          while the command runs, e.g. while it looks up the leader, may
//	          still reach the old leader). Default --conns is the number of
//	          members (more clients than --conc: retry targets).
//
// Every request has a timeout (--timeout-ms, 2000): a request that failed or
// timed out counts as one error and the operation is retried on the next
// client (the next member), after 5 ms for a failure. An operation's latency
// runs from its first attempt to its acknowledgement, retries included.
//
// Latencies go into the same log-bucketed histogram as src/bench/hist.c
// (2^6 sub-buckets per power of two of nanoseconds; see hist.go), so the
// percentiles of the three tools are computed the same way.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"
)

type kind int

const (
	kWrite kind = iota
	kRead
	kLread
)

var (
	workload      = flag.String("workload", "write", "write|read|lread|mixed|failover")
	conc          = flag.Int("conc", -1, "outstanding requests (16; failover 1)")
	conns         = flag.Int("conns", -1, "clients = gRPC connections (min(conc,64); failover: number of members)")
	valueSize     = flag.Int("value-size", 100, "value bytes")
	keys          = flag.Int("keys", 10000, "key space k0..k<K-1>")
	seconds       = flag.Float64("seconds", 10, "measured duration")
	opsLimit      = flag.Uint64("ops", 0, "stop after N measured operations instead")
	warmupSeconds = flag.Float64("warmup-seconds", -1, "unmeasured warm-up (1; failover 0)")
	killCmd       = flag.String("kill-cmd", "", "failover: shell command that kills a member")
	killAfterMs   = flag.Int("kill-after-ms", 3000, "failover: run the kill command this long into the run")
	afterMs       = flag.Int("after-ms", 5000, "failover: keep running this long after the kill")
	readPercent   = flag.Int("read-percent", 90, "reads in mixed")
	timeoutMs     = flag.Int("timeout-ms", 2000, "per-request timeout before a retry")
	membersFlag   = flag.String("members", "127.0.0.1:12379,127.0.0.1:12389,127.0.0.1:12399", "host:port,...")
	noPreload     = flag.Bool("no-preload", false, "do not write the keys first")
	noCompact     = flag.Bool("no-compact", false, "do not compact the history after preload")
	verbose       = flag.Bool("verbose", false, "request errors on stderr")
	system        = flag.String("system", "etcd", "must be etcd (accepted for symmetry with cohort bench)")
)

var (
	clients       []*clientv3.Client
	hosts         []string
	value         string
	measStart     int64 // ns since t0; 0 = warming up
	measEnd       int64 // 0 = running
	killAt        int64 // ns since t0 of the kill; 0 = not yet
	killDone      int64 // ns since t0 when the kill command returned
	firstAck      int64 // ns since t0 of the first ack of a Put sent after the kill
	stopping      int32
	reportedError int32
	opsTotal      uint64
	errorsN       uint64
	opsMeas       uint64
	t0            = time.Now()
)

func since() int64 { return int64(time.Since(t0)) + 1 } // never 0

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcd_bench: "+format+"\n", args...)
	os.Exit(2)
}

func countError() {
	if atomic.LoadInt64(&measStart) != 0 && atomic.LoadInt64(&measEnd) == 0 {
		atomic.AddUint64(&errorsN, 1)
	}
}

func pickKind(r *rng) kind {
	switch *workload {
	case "read":
		return kRead
	case "lread":
		return kLread
	case "mixed":
		if int(r.next()%100) < *readPercent {
			return kRead
		}
		return kWrite
	}
	return kWrite
}

func do(cli *clientv3.Client, k kind, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*timeoutMs)*time.Millisecond)
	defer cancel()
	var err error
	switch k {
	case kWrite:
		_, err = cli.Put(ctx, key, value)
	case kRead:
		_, err = cli.Get(ctx, key)
	case kLread:
		_, err = cli.Get(ctx, key, clientv3.WithSerializable())
	}
	return err
}

func worker(id int, h *hist, wg *sync.WaitGroup) {
	defer wg.Done()
	r := newRng(uint64(time.Now().UnixNano()) ^ uint64(id)*0x9e3779b97f4a7c15)
	c := id % len(clients)
	for atomic.LoadInt32(&stopping) == 0 {
		k := pickKind(r)
		key := fmt.Sprintf("k%d", r.next()%uint64(*keys))
		opStart := since()
		for {
			attempt := since()
			err := do(clients[c], k, key)
			now := since()
			if err == nil {
				atomic.AddUint64(&opsTotal, 1)
				ms := atomic.LoadInt64(&measStart)
				me := atomic.LoadInt64(&measEnd)
				if ms != 0 && opStart >= ms && (me == 0 || now <= me) {
					h.record(uint64(now - opStart))
					atomic.AddUint64(&opsMeas, 1)
				}
				if kd := atomic.LoadInt64(&killDone); kd != 0 && k == kWrite && attempt >= kd {
					atomic.CompareAndSwapInt64(&firstAck, 0, now)
				}
				break
			}
			if atomic.LoadInt32(&stopping) != 0 {
				return
			}
			countError()
			if *verbose {
				fmt.Fprintf(os.Stderr, "etcd_bench: request on %s failed: %v\n", hosts[c], err)
			} else if atomic.CompareAndSwapInt32(&reportedError, 0, 1) {
				fmt.Fprintf(os.Stderr, "etcd_bench: request on %s failed: %v (first error; --verbose for all)\n", hosts[c], err)
			}
			c = (c + 1) % len(clients)
			if now-attempt < int64(*timeoutMs)*int64(time.Millisecond) {
				time.Sleep(5 * time.Millisecond) // failed fast: back off a little
			}
		}
	}
}

func preload() {
	start := time.Now()
	window := 8 << 20 / (*valueSize + 64)
	if window > 256 {
		window = 256
	}
	if window < 1 {
		window = 1
	}
	var next int64 = -1
	var failed int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < window; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cli := clients[w%len(clients)]
			for {
				k := atomic.AddInt64(&next, 1)
				if k >= int64(*keys) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("k%d", k), value)
				cancel()
				if err != nil {
					atomic.AddInt64(&failed, 1)
					firstErr.Store(err)
				}
			}
		}(w)
	}
	wg.Wait()
	if failed > 0 {
		die("preload: %d of %d keys failed: %v", failed, *keys, firstErr.Load())
	}
	fmt.Fprintf(os.Stderr, "etcd_bench: preloaded %d keys of %d bytes in %.2f s\n",
		*keys, *valueSize, time.Since(start).Seconds())
	if !*noCompact {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		resp, err := clients[0].Get(ctx, "k0")
		if err != nil {
			die("get revision: %v", err)
		}
		if _, err := clients[0].Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil &&
			!strings.Contains(err.Error(), "compacted") {
			die("compact: %v", err)
		}
	}
}

func main() {
	flag.Parse()
	if flag.NArg() > 0 {
		die("unexpected argument %q", flag.Arg(0))
	}
	if *system != "etcd" {
		die("--system: this tool drives etcd only, not %q", *system)
	}
	switch *workload {
	case "write", "read", "lread", "mixed", "failover":
	default:
		die("--workload: expected write, read, lread, mixed or failover, got %q", *workload)
	}
	failover := *workload == "failover"
	members := strings.Split(*membersFlag, ",")
	if *conc < 0 {
		*conc = 16
		if failover {
			*conc = 1
		}
	}
	if *conc < 1 {
		die("--conc must be at least 1")
	}
	if *conns < 0 {
		*conns = 64
		if *conc < 64 {
			*conns = *conc
		}
		if failover {
			*conns = len(members)
		}
	}
	if *conns > *conc && !failover {
		*conns = *conc
	}
	if *conns < 1 {
		die("--conns must be at least 1")
	}
	if *warmupSeconds < 0 {
		*warmupSeconds = 1
		if failover {
			*warmupSeconds = 0
		}
	}
	if failover && *killCmd == "" {
		die("--workload failover needs --kill-cmd")
	}
	if *keys < 1 || *valueSize < 0 || *readPercent < 0 || *readPercent > 100 {
		die("bad --keys, --value-size or --read-percent")
	}

	// Quiet the client's own logging (zap and gRPC) unless --verbose.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(devnull{}, devnull{}, os.Stderr))
	logCfg := zap.NewProductionConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	if !*verbose {
		logCfg.OutputPaths = []string{"/dev/null"}
		logCfg.ErrorOutputPaths = []string{"/dev/null"}
	}

	value = strings.Repeat("abcdefghijklmnopqrstuvwxyz", *valueSize/26+1)[:*valueSize]
	for j := 0; j < *conns; j++ {
		ep := members[j%len(members)]
		endpoints := []string{ep}
		if failover {
			// Every member, starting with this client's own, so the client's
			// balancer skips a dead member by itself (a single-endpoint
			// client waits for its dead member until the request times out:
			// clientv3 sends with WaitForReady).
			endpoints = nil
			for k := 0; k < len(members); k++ {
				endpoints = append(endpoints, members[(j+k)%len(members)])
			}
		}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:          endpoints,
			DialTimeout:        5 * time.Second,
			MaxCallSendMsgSize: 4 << 20,
			LogConfig:          &logCfg,
		})
		if err != nil {
			die("connect %s: %v", ep, err)
		}
		clients = append(clients, cli)
		hosts = append(hosts, ep)
	}
	if !*noPreload {
		preload()
	}

	t0 = time.Now()
	hists := make([]*hist, *conc)
	var wg sync.WaitGroup
	if *warmupSeconds == 0 {
		atomic.StoreInt64(&measStart, since())
	}
	for i := 0; i < *conc; i++ {
		hists[i] = newHist()
		wg.Add(1)
		go worker(i, hists[i], &wg)
	}

	warmEnd := int64(*warmupSeconds * 1e9)
	var endAt, killTime int64
	tick := time.Millisecond
	nextProgress := int64(time.Second)
	var lastOps uint64
	lastT := int64(0)
	for {
		now := since()
		ms := atomic.LoadInt64(&measStart)
		if ms == 0 && now >= warmEnd {
			ms = now
			atomic.StoreInt64(&measStart, ms)
		}
		if ms != 0 && endAt == 0 {
			if failover {
				killTime = ms + int64(*killAfterMs)*int64(time.Millisecond)
				endAt = killTime + int64(*afterMs)*int64(time.Millisecond)
			} else {
				endAt = ms + int64(*seconds*1e9)
			}
		}
		if failover && killTime != 0 && now >= killTime && atomic.LoadInt64(&killAt) == 0 {
			atomic.StoreInt64(&killAt, since())
			fmt.Fprintf(os.Stderr, "etcd_bench: kill: %s\n", *killCmd)
			cmd := exec.Command("/bin/sh", "-c", *killCmd)
			cmd.Stdout = os.Stderr
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "etcd_bench: kill command: %v\n", err)
			}
			now = since()
			atomic.StoreInt64(&killDone, now)
		}
		done := endAt != 0 && now >= endAt
		if *opsLimit > 0 && ms != 0 && atomic.LoadUint64(&opsMeas) >= *opsLimit {
			done = true
		}
		if done {
			atomic.StoreInt64(&measEnd, now)
			atomic.StoreInt32(&stopping, 1)
			break
		}
		if now >= nextProgress {
			ops := atomic.LoadUint64(&opsTotal)
			warm := ""
			if ms == 0 {
				warm = " (warm-up)"
			}
			fmt.Fprintf(os.Stderr, "etcd_bench: t=%.0fs ops_per_s=%.0f total_ops=%d errors=%d%s\n",
				float64(now)/1e9, float64(ops-lastOps)/(float64(now-lastT)/1e9), ops,
				atomic.LoadUint64(&errorsN), warm)
			lastOps, lastT = ops, now
			nextProgress += int64(time.Second)
		}
		time.Sleep(tick)
	}

	// Let the requests in flight finish (bounded by their timeout); they are
	// not measured.
	doneCh := make(chan struct{})
	go func() { wg.Wait(); close(doneCh) }()
	select {
	case <-doneCh:
	case <-time.After(time.Duration(*timeoutMs+1000) * time.Millisecond):
	}

	total := newHist()
	for _, h := range hists {
		total.merge(h)
	}
	secs := float64(atomic.LoadInt64(&measEnd)-atomic.LoadInt64(&measStart)) / 1e9
	opsPerS := 0.0
	if secs > 0 {
		opsPerS = float64(total.count) / secs
	}
	line := fmt.Sprintf("bench system=etcd workload=%s conc=%d conns=%d value=%d ops=%d secs=%.2f ops_per_s=%.1f"+
		" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%d",
		*workload, *conc, *conns, *valueSize, total.count, secs, opsPerS,
		float64(total.quantile(0.50))/1e3, float64(total.quantile(0.90))/1e3,
		float64(total.quantile(0.99))/1e3, float64(total.quantile(0.999))/1e3,
		float64(total.maxNs)/1e3, atomic.LoadUint64(&errorsN))
	if failover {
		ka, fa := atomic.LoadInt64(&killAt), atomic.LoadInt64(&firstAck)
		if ka != 0 && fa != 0 {
			line += fmt.Sprintf(" failover_ms=%.1f", float64(fa-ka)/1e6)
		} else {
			line += " failover_ms=-1"
		}
	}
	fmt.Println(line)
	os.Stdout.Sync()
	// Closing clients whose member is dead can block: exit without waiting.
	os.Exit(0)
}

type devnull struct{}

func (devnull) Write(p []byte) (int, error) { return len(p), nil }

type rng struct{ s uint64 }

func newRng(seed uint64) *rng { return &rng{s: seed} }

// splitmix64, as in zk_bench.
func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
