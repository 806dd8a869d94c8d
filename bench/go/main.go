// SPDX-License-Identifier: MIT
// Command leashbench is the Go side of leash's benchmark suite.
//
//	leashbench WORKLOAD [N]
//
// prints `name value unit` lines, exactly like the C programs
// bench/<workload>.c, which implement the same algorithms on leash. Every
// metric is "lower is better" (time or bytes). Run it through bench/run.sh,
// which sets GOMAXPROCS (and LEASH_PROCS for the C side) and takes medians.
// Only the standard library is used; RSS is read from /proc/self/statm,
// exactly as the C side reads it, not from runtime.MemStats.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// warmup is the number of untimed iterations run before the timed ones
// (the same rule as bench_warmup() in bench/bench_util.h).
func warmup(n int64) int64 {
	w := n / 10
	if w > 100000 {
		w = 100000
	}
	return w
}

// parseN reads a positive integer for what ("N" or a variable's name).
func parseN(what, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		fail("bad %s %q", what, s)
	}
	return v
}

// envN: a workload's width from the environment variable name
// (BENCH_WORKERS, BENCH_PAIRS, BENCH_MPMC, as bench_env_n on the C side),
// or def when unset.
func envN(name string, def int64) int64 {
	if s := os.Getenv(name); s != "" {
		return parseN(name, s)
	}
	return def
}

func report(name string, value float64, unit string) {
	fmt.Printf("%s %.1f %s\n", name, value, unit)
}

func perOp(name string, elapsed time.Duration, n int64) {
	report(name, float64(elapsed.Nanoseconds())/float64(n), "ns/op")
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "leashbench: "+format+"\n", args...)
	os.Exit(1)
}

// rssBytes reads the resident set size from /proc/self/statm (field 2,
// in pages), like bench_rss_bytes() on the C side.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("read /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		fail("bad /proc/self/statm")
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		fail("bad /proc/self/statm: %v", err)
	}
	return pages * int64(os.Getpagesize())
}

// 1. spawn: start a goroutine that only signals completion; wait for it.
func benchSpawn(n int64) {
	done := make(chan struct{})
	w := warmup(n)
	var t0 time.Time
	for i := int64(0); i < w+n; i++ {
		if i == w {
			t0 = time.Now()
		}
		go func() { done <- struct{}{} }()
		<-done
	}
	perOp("spawn", time.Since(t0), n)
}

// 2. yield: two goroutines each yield n times; ns per yield.
func benchYield(n int64) {
	done := make(chan struct{}, 2)
	t0 := time.Now()
	for k := 0; k < 2; k++ {
		go func() {
			for i := int64(0); i < n; i++ {
				runtime.Gosched()
			}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	perOp("yield", time.Since(t0), 2*n)
}

// 3. pingpong: round trips over two unbuffered int channels. With
// BENCH_PAIRS=K, K independent pairs at once, each pinger doing n round
// trips; wall time over all K*n, reported as "pairs" (bench/pingpong.c).
type pair struct{ ping, pong chan int }

// startPair makes a pair's channels and starts its ponger.
func startPair() pair {
	p := pair{make(chan int), make(chan int)}
	go func() {
		for v := range p.ping {
			p.pong <- v
		}
		close(p.pong)
	}()
	return p
}

// rounds does round trips first .. first+count-1 from p's pinging side.
func (p pair) rounds(first, count int64) {
	for i := first; i < first+count; i++ {
		p.ping <- int(i)
		if v := <-p.pong; v != int(i) {
			fail("pingpong: got %d want %d", v, i)
		}
	}
}

// end closes ping and checks that the ponger closed pong.
func (p pair) end() {
	close(p.ping)
	if _, ok := <-p.pong; ok {
		fail("pingpong: pong not closed")
	}
}

func benchPingpong(n int64) {
	if k := envN("BENCH_PAIRS", 0); k > 0 {
		benchPairs(n, k)
		return
	}
	p := startPair()
	w := warmup(n)
	p.rounds(0, w)
	t0 := time.Now()
	p.rounds(w, n)
	el := time.Since(t0)
	p.end()
	perOp("pingpong", el, n)
}

// benchPairs: k pairs; the pongers start (and park) before the clock does.
func benchPairs(n, k int64) {
	ps := make([]pair, k)
	for i := range ps {
		ps[i] = startPair()
	}
	done := make(chan struct{}, k)
	t0 := time.Now()
	for _, p := range ps {
		go func(p pair) {
			p.rounds(0, n)
			done <- struct{}{}
		}(p)
	}
	for i := int64(0); i < k; i++ {
		<-done
	}
	el := time.Since(t0)
	for _, p := range ps {
		p.end()
	}
	perOp("pairs", el, k*n)
}

// 4. buffered: producer -> consumer over one channel of cap 128 (int64).
// With BENCH_MPMC=K, K producers and K consumers on the one channel,
// reported as "mpmc" (bench/buffered.c).
type tally struct{ cnt, sum, sq uint64 }

func (t *tally) add(r tally) {
	t.cnt += r.cnt
	t.sum += r.sum
	t.sq += r.sq
}

func produce(ch chan<- int64, lo, hi int64) {
	for i := lo; i < hi; i++ {
		ch <- i
	}
}

// drain receives until ch is closed; the sums wrap, as on the C side.
func drain(ch <-chan int64) tally {
	var t tally
	for v := range ch {
		t.cnt++
		t.sum += uint64(v)
		t.sq += uint64(v) * uint64(v)
	}
	return t
}

// check fails unless t is the tally of 0 .. n-1 (n, n(n-1)/2 and
// (n-1)n(2n-1)/6 modulo 2^64, each divisor taken out of the factor it
// divides first, as check() in bench/buffered.c).
func (t tally) check(n int64, what string) {
	a, b, c := uint64(n)-1, uint64(n), 2*uint64(n)-1
	var sum uint64
	if a%2 != 0 {
		sum = a * (b / 2)
	} else {
		sum = (a / 2) * b
	}
	if a%2 == 0 {
		a /= 2
	} else {
		b /= 2
	}
	if a%3 == 0 {
		a /= 3
	} else if b%3 == 0 {
		b /= 3
	} else {
		c /= 3
	}
	want := tally{uint64(n), sum, a * b * c}
	if t != want {
		fail("%s: got %d messages (sum %d, squares %d), want %d (%d, %d)",
			what, t.cnt, t.sum, t.sq, want.cnt, want.sum, want.sq)
	}
}

func benchBuffered(n int64) {
	if k := envN("BENCH_MPMC", 0); k > 0 {
		benchMpmc(n, k)
		return
	}
	ch := make(chan int64, 128)
	t0 := time.Now()
	go func() {
		produce(ch, 0, n)
		close(ch)
	}()
	t := drain(ch)
	el := time.Since(t0)
	t.check(n, "buffered")
	perOp("buffered", el, n)
}

// benchMpmc: main closes the channel once every producer has signalled,
// then adds up the consumers' tallies.
func benchMpmc(n, k int64) {
	ch := make(chan int64, 128)
	done := make(chan struct{}, k)
	results := make(chan tally, k)
	t0 := time.Now()
	for i := int64(0); i < k; i++ {
		go func(lo, hi int64) {
			produce(ch, lo, hi)
			done <- struct{}{}
		}(i*n/k, (i+1)*n/k)
	}
	for i := int64(0); i < k; i++ {
		go func() { results <- drain(ch) }()
	}
	for i := int64(0); i < k; i++ {
		<-done
	}
	close(ch)
	var t tally
	for i := int64(0); i < k; i++ {
		t.add(<-results)
	}
	el := time.Since(t0)
	t.check(n, "mpmc")
	perOp("mpmc", el, n)
}

// 5. select: ping-pong where each side receives through a 2-case select
// whose second case is a channel nobody uses.
func benchSelect(n int64) {
	ping := make(chan int)
	pong := make(chan int)
	unused := make(chan int)
	go func() {
		for {
			select {
			case v, ok := <-ping:
				if !ok {
					close(pong)
					return
				}
				pong <- v
			case <-unused:
				fail("select: unused channel ready")
			}
		}
	}()
	w := warmup(n)
	var t0 time.Time
	for i := int64(0); i < w+n; i++ {
		if i == w {
			t0 = time.Now()
		}
		ping <- int(i)
		select {
		case v := <-pong:
			if v != int(i) {
				fail("select: got %d want %d", v, i)
			}
		case <-unused:
			fail("select: unused channel ready")
		}
	}
	el := time.Since(t0)
	close(ping)
	<-pong
	perOp("select", el, n)
}

// 6. parked: n goroutines parked three ways, as bench/parked.c: blocked
// receiving from one shared channel (RSS growth per goroutine, parked,
// B/op, and the time to create one and have it parked, parked_spawn,
// ns/op), waiting on one context's Done (parked_ctx_spawn), asleep for an
// hour (parked_sleep_spawn; still asleep when main returns).
func startAll(n int64, started *int64, fn func()) time.Duration {
	atomic.StoreInt64(started, 0)
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		go fn()
	}
	for atomic.LoadInt64(started) < n {
		runtime.Gosched()
	}
	return time.Since(t0)
}

func benchParked(n int64) {
	ch := make(chan struct{})
	done := make(chan struct{}, 1)
	var started, exited int64
	waiter := func(c <-chan struct{}) func() {
		return func() {
			atomic.AddInt64(&started, 1)
			<-c
			if atomic.AddInt64(&exited, 1) == n {
				done <- struct{}{}
			}
		}
	}
	rss0 := rssBytes()
	el := startAll(n, &started, waiter(ch))
	rss1 := rssBytes()
	close(ch)
	<-done
	report("parked", float64(rss1-rss0)/float64(n), "B/op")
	perOp("parked_spawn", el, n)

	ctx, cancel := context.WithCancel(context.Background())
	atomic.StoreInt64(&exited, 0)
	el = startAll(n, &started, waiter(ctx.Done()))
	cancel()
	<-done
	perOp("parked_ctx_spawn", el, n)

	el = startAll(n, &started, func() {
		atomic.AddInt64(&started, 1)
		time.Sleep(time.Hour)
	})
	perOp("parked_sleep_spawn", el, n)
}

// 7. sleepers: n goroutines each sleep 1 ms; total time until all are done.
func benchSleepers(n int64) {
	done := make(chan struct{}, 1)
	var exited int64
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		go func() {
			time.Sleep(time.Millisecond)
			if atomic.AddInt64(&exited, 1) == n {
				done <- struct{}{}
			}
		}()
	}
	<-done
	report("sleepers", float64(time.Since(t0).Nanoseconds())/1e6, "ms")
}

// 8. ctx: cancel-and-wake cycle. Each round makes a cancelable context,
// hands it to a waiter blocked on ctx.Done(), cancels it and waits for
// the waiter's acknowledgement.
func benchCtx(n int64) {
	ctxs := make(chan context.Context)
	ack := make(chan struct{})
	go func() {
		for c := range ctxs {
			<-c.Done()
			ack <- struct{}{}
		}
		close(ack)
	}()
	w := warmup(n)
	var t0 time.Time
	for i := int64(0); i < w+n; i++ {
		if i == w {
			t0 = time.Now()
		}
		c, cancel := context.WithCancel(context.Background())
		ctxs <- c
		cancel()
		<-ack
	}
	el := time.Since(t0)
	close(ctxs)
	<-ack
	perOp("ctx", el, n)
}

// 9. fanout: BENCH_WORKERS workers (default 8) take 64 per worker CPU-bound
// tasks (n rounds of integer hashing each) from a jobs channel and return
// results on another. Reports wall time per task; run at 1 and P procs for
// the scaling ratio.

func fanHash(seed uint64, rounds int64) uint64 {
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := int64(0); i < rounds; i++ {
		x ^= x >> 29
		x *= 0xbf58476d1ce4e5b9
		x += uint64(i)
	}
	return x
}

func benchFanout(n int64) {
	workers := envN("BENCH_WORKERS", 8)
	tasks := 64 * workers
	jobs := make(chan uint64, 64)
	results := make(chan uint64, 64)
	t0 := time.Now()
	go func() {
		for i := uint64(0); i < uint64(tasks); i++ {
			jobs <- i
		}
		close(jobs)
	}()
	for k := int64(0); k < workers; k++ {
		go func() {
			for j := range jobs {
				results <- fanHash(j, n)
			}
		}()
	}
	var sum uint64
	for i := int64(0); i < tasks; i++ {
		sum += <-results
	}
	el := time.Since(t0)
	perOp("fanout", el, tasks)
	fmt.Fprintf(os.Stderr, "fanout checksum %016x\n", sum)
}

// 10. ctxcancel: WithCancel(Background) and cancel, no waiter.
func benchCtxcancel(n int64) {
	w := warmup(n)
	var t0 time.Time
	for i := int64(0); i < w+n; i++ {
		if i == w {
			t0 = time.Now()
		}
		_, cancel := context.WithCancel(context.Background())
		cancel()
	}
	perOp("ctxcancel", time.Since(t0), n)
}

// 11. ctxtree: a cancel tree of depth 3 under one root (10 -> 100 ->
// 10,000 contexts), the root cancelled, every context checked, every
// cancel func called (where leash releases); n rounds after one warm-up.
const (
	ctxtA     = 10
	ctxtB     = 10
	ctxtC     = 100
	ctxtTotal = ctxtA + ctxtA*ctxtB + ctxtA*ctxtB*ctxtC
)

func benchCtxtree(n int64) {
	all := make([]context.Context, ctxtTotal)
	cancels := make([]context.CancelFunc, ctxtTotal)
	round := func() {
		root, cancelRoot := context.WithCancel(context.Background())
		k := 0
		for a := 0; a < ctxtA; a++ {
			ca, cf := context.WithCancel(root)
			all[k], cancels[k] = ca, cf
			k++
			for b := 0; b < ctxtB; b++ {
				cb, cf := context.WithCancel(ca)
				all[k], cancels[k] = cb, cf
				k++
				for c := 0; c < ctxtC; c++ {
					all[k], cancels[k] = context.WithCancel(cb)
					k++
				}
			}
		}
		cancelRoot()
		for i, c := range all {
			if c.Err() != context.Canceled {
				fail("ctxtree: context %d not cancelled", i)
			}
		}
		for _, cf := range cancels {
			cf()
		}
	}
	round()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		round()
	}
	perOp("ctxtree", time.Since(t0), n*ctxtTotal)
}

// 12. sync: uncontended Mutex Lock+Unlock, RWMutex RLock+RUnlock, and
// Once.Do after the first call.
var onceCalls int64

func benchSync(n int64) {
	w := warmup(n)
	var mu sync.Mutex
	for i := int64(0); i < w; i++ {
		mu.Lock()
		mu.Unlock()
	}
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		mu.Lock()
		mu.Unlock()
	}
	perOp("mutex", time.Since(t0), n)

	var rw sync.RWMutex
	for i := int64(0); i < w; i++ {
		rw.RLock()
		rw.RUnlock()
	}
	t0 = time.Now()
	for i := int64(0); i < n; i++ {
		rw.RLock()
		rw.RUnlock()
	}
	perOp("rwmutex", time.Since(t0), n)

	var once sync.Once
	f := func() { onceCalls++ }
	for i := int64(0); i < w+1; i++ {
		once.Do(f)
	}
	t0 = time.Now()
	for i := int64(0); i < n; i++ {
		once.Do(f)
	}
	el := time.Since(t0)
	if onceCalls != 1 {
		fail("once: f ran %d times", onceCalls)
	}
	perOp("once", el, n)
}

// 13. tcpecho: TCP echo over loopback. One goroutine per accepted
// connection echoes; clients send a tcpeMsg-byte message and read the
// echo back. tcpecho1: one connection, n/4 round trips (at most 20,000),
// µs per round trip; tcpecho: tcpeConns connections at once, n/tcpeConns
// round trips each, total wall time / total round trips. Connections are
// made before the clock starts; everything is closed at the end.
const (
	tcpeConns = 1000
	tcpeMsg   = 64
)

func raiseNofile() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

func tcpeClients(addr string, conns int, rounds int64) time.Duration {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(conns)
	done.Add(conns)
	for i := 0; i < conns; i++ {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail("tcpecho: dial: %v", err)
			}
			ready.Done()
			<-start
			msg := bytes.Repeat([]byte{'x'}, tcpeMsg)
			got := make([]byte, tcpeMsg)
			for i := int64(0); i < rounds; i++ {
				for b := 0; b < 8; b++ {
					msg[b] = byte(i >> (8 * b))
				}
				if _, err := c.Write(msg); err != nil {
					fail("tcpecho: client write: %v", err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					fail("tcpecho: client read: %v", err)
				}
				if !bytes.Equal(msg, got) {
					fail("tcpecho: bad echo")
				}
			}
			c.Close()
			done.Done()
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	return time.Since(t0)
}

func benchTcpecho(n int64) {
	raiseNofile()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("tcpecho: listen: %v", err)
	}
	var handlers sync.WaitGroup
	accDone := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					break
				}
				fail("tcpecho: accept: %v", err)
			}
			handlers.Add(1)
			go func() {
				buf := make([]byte, tcpeMsg)
				for {
					r, err := c.Read(buf)
					if r > 0 {
						if _, werr := c.Write(buf[:r]); werr != nil {
							fail("tcpecho: server write: %v", werr)
						}
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						fail("tcpecho: server read: %v", err)
					}
				}
				c.Close()
				handlers.Done()
			}()
		}
		close(accDone)
	}()
	addr := ln.Addr().String()
	n1 := n / 4
	if n1 > 20000 {
		n1 = 20000
	}
	if n1 < 1 {
		n1 = 1
	}
	rounds := n / tcpeConns
	if rounds < 1 {
		rounds = 1
	}
	tcpeClients(addr, 1, n1/10+1) // warm-up
	el1 := tcpeClients(addr, 1, n1)
	el := tcpeClients(addr, tcpeConns, rounds)
	ln.Close()
	<-accDone
	handlers.Wait()
	report("tcpecho", float64(el.Nanoseconds())/1e3/float64(rounds*tcpeConns), "us/op")
	report("tcpecho1", float64(el1.Nanoseconds())/1e3/float64(n1), "us/op")
}

// 14. dump100k: runtime.Stack(buf, true) to /dev/null with n goroutines
// each parked on its own channel, after one untimed call; reported under
// both dump100k_2 and dump100k_3 (the reference for leash's formats 2 and
// 3). dump_shared: the same with dumpShared goroutines on one channel.
const dumpShared = 1000

func dumpOnce(f *os.File, buf *[]byte) time.Duration {
	t0 := time.Now()
	for {
		k := runtime.Stack(*buf, true)
		if k < len(*buf) {
			if _, err := f.Write((*buf)[:k]); err != nil {
				fail("dump: write: %v", err)
			}
			break
		}
		*buf = make([]byte, 2*len(*buf))
	}
	return time.Since(t0)
}

func dumpParked(f *os.File, buf *[]byte, total int64, shared bool) time.Duration {
	chans := make([]chan struct{}, total)
	one := make(chan struct{})
	var started int64
	var wg sync.WaitGroup
	wg.Add(int(total))
	for i := range chans {
		if shared {
			chans[i] = one
		} else {
			chans[i] = make(chan struct{})
		}
		ch := chans[i]
		go func() {
			atomic.AddInt64(&started, 1)
			<-ch
			wg.Done()
		}()
	}
	for atomic.LoadInt64(&started) < total {
		runtime.Gosched()
	}
	dumpOnce(f, buf)
	el := dumpOnce(f, buf)
	if shared {
		close(one)
	} else {
		for _, ch := range chans {
			close(ch)
		}
	}
	wg.Wait()
	return el
}

func benchDump100k(n int64) {
	f, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
	if err != nil {
		fail("dump: %v", err)
	}
	buf := make([]byte, 1<<20)
	elShared := dumpParked(f, &buf, dumpShared, true)
	el := dumpParked(f, &buf, n, false)
	f.Close()
	report("dump100k_2", float64(el.Nanoseconds())/1e6, "ms")
	report("dump100k_3", float64(el.Nanoseconds())/1e6, "ms")
	report("dump_shared", float64(elShared.Nanoseconds())/1e6, "ms")
}

// 15. dumpbusy: the latency of runtime.Stack(buf, true) while every P is
// busy: n goroutines, one ping-pong pair per P (GOMAXPROCS) on unbuffered
// channels without pause, the rest parked on their own channels. 200
// dumps to /dev/null after one untimed one, from a goroutine locked to its
// thread (_thread), from a plain goroutine (_co), and from 4 goroutines at
// once, 50 each (_conc); p50 and p99.
const dumpBusyDumps = 200
const dumpBusyConc = 4

func dumpBusySeries(t []time.Duration, lock bool) {
	if lock {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	f, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
	if err != nil {
		fail("dumpbusy: %v", err)
	}
	buf := make([]byte, 1<<20)
	dumpOnce(f, &buf)
	for i := range t {
		t[i] = dumpOnce(f, &buf)
	}
	f.Close()
}

func pctDur(t []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), t...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return float64(s[i].Nanoseconds()) / 1e6
}

func benchDumpbusy(n int64) {
	procs := runtime.GOMAXPROCS(0)
	if n < int64(2*procs+1) {
		fail("dumpbusy: N must be more than twice the procs (%d)", procs)
	}
	var stop int32
	var started int64
	nparked := n - int64(2*procs) - 1
	chans := make([]chan struct{}, nparked)
	for i := range chans {
		ch := make(chan struct{})
		chans[i] = ch
		go func() {
			atomic.AddInt64(&started, 1)
			<-ch
		}()
	}
	for i := 0; i < procs; i++ {
		ping, pong := make(chan int), make(chan int)
		go func() {
			atomic.AddInt64(&started, 1)
			v := 0
			for atomic.LoadInt32(&stop) == 0 {
				ping <- v
				v = <-pong
			}
			close(ping)
		}()
		go func() {
			atomic.AddInt64(&started, 1)
			for v := range ping {
				pong <- v
			}
		}()
	}
	for atomic.LoadInt64(&started) < n-1 {
		runtime.Gosched()
	}
	tThread := make([]time.Duration, dumpBusyDumps)
	tCo := make([]time.Duration, dumpBusyDumps)
	tConc := make([]time.Duration, dumpBusyDumps)
	done := make(chan struct{})
	go func() { dumpBusySeries(tThread, true); close(done) }()
	<-done
	dumpBusySeries(tCo, false)
	var wg sync.WaitGroup
	k := dumpBusyDumps / dumpBusyConc
	for i := 0; i < dumpBusyConc; i++ {
		wg.Add(1)
		go func(t []time.Duration) { dumpBusySeries(t, true); wg.Done() }(tConc[i*k : (i+1)*k])
	}
	wg.Wait()
	atomic.StoreInt32(&stop, 1)
	for _, ch := range chans {
		close(ch)
	}
	report("dumpbusy_thread_p50", pctDur(tThread, 50), "ms")
	report("dumpbusy_thread_p99", pctDur(tThread, 99), "ms")
	report("dumpbusy_co_p50", pctDur(tCo, 50), "ms")
	report("dumpbusy_co_p99", pctDur(tCo, 99), "ms")
	report("dumpbusy_conc_p99", pctDur(tConc[:k*dumpBusyConc], 99), "ms")
}

var workloads = map[string]struct {
	run func(int64)
	n   int64
}{
	"spawn":     {benchSpawn, 200000},
	"yield":     {benchYield, 500000},
	"pingpong":  {benchPingpong, 200000},
	"buffered":  {benchBuffered, 1000000},
	"select":    {benchSelect, 200000},
	"parked":    {benchParked, 100000},
	"sleepers":  {benchSleepers, 100000},
	"ctx":       {benchCtx, 200000},
	"fanout":    {benchFanout, 20000},
	"ctxcancel": {benchCtxcancel, 1000000},
	"ctxtree":   {benchCtxtree, 20},
	"sync":      {benchSync, 10000000},
	"tcpecho":   {benchTcpecho, 100000},
	"dump100k":  {benchDump100k, 100000},
	"dumpbusy":  {benchDumpbusy, 1000},
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: leashbench WORKLOAD [N]")
		os.Exit(2)
	}
	wl, ok := workloads[os.Args[1]]
	if !ok {
		fail("unknown workload %q", os.Args[1])
	}
	n := wl.n
	if len(os.Args) == 3 {
		n = parseN("N", os.Args[2])
	}
	wl.run(n)
}
