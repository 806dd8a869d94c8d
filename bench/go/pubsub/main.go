// SPDX-License-Identifier: MIT

// Command pubsub is examples/pubsub.c in Go: the same line-based TCP
// publish/subscribe broker, flag for flag and byte for byte, for
// docs/NETWORK-SERVICE.md and bench/run.sh's pubsub workload.
//
//	SUB topic / UNSUB topic   -> OK
//	PUB topic message         -> every subscriber of topic gets
//	                             "MSG topic message"
//	PING                      -> PONG
//	a line over -maxline      -> ERR line too long (the connection stays)
//	anything else             -> ERR unknown command
//
// Each client has a reader and a writer goroutine and a bounded queue of
// lines: a client too slow to take its lines is disconnected. A client
// silent for -idle is disconnected. SIGTERM or SIGINT stops it: no new
// connection, every reader ends, and main returns once every client is
// gone.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	addr      = flag.String("addr", "127.0.0.1:7000", "address to listen on")
	debugAddr = flag.String("debug", "", "address of the net/http/pprof endpoint")
	idle      = flag.Duration("idle", 10*time.Second, "disconnect a client silent this long")
	queue     = flag.Int("queue", 256, "lines queued for a client before it is dropped")
	maxLine   = flag.Int("maxline", 4096, "longest line accepted, newline included")
)

type client struct {
	conn net.Conn
	out  chan string // lines for the writer
}

// send queues line for c; a client too slow to take it goes.
func (c *client) send(line string) {
	select {
	case c.out <- line:
	default:
		c.conn.Close() // from any goroutine: its reader wakes
	}
}

var (
	mu     sync.Mutex
	topics = map[string]map[*client]bool{}
)

func subscribe(c *client, topic string) {
	mu.Lock()
	defer mu.Unlock()
	if topics[topic] == nil {
		topics[topic] = map[*client]bool{}
	}
	topics[topic][c] = true
}

func unsubscribe(c *client, topic string) {
	mu.Lock()
	defer mu.Unlock()
	delete(topics[topic], c)
	if len(topics[topic]) == 0 {
		delete(topics, topic)
	}
}

func unsubscribeAll(c *client) {
	mu.Lock()
	defer mu.Unlock()
	for topic, subs := range topics {
		delete(subs, c)
		if len(subs) == 0 {
			delete(topics, topic)
		}
	}
}

func publish(topic, line string) {
	mu.Lock()
	defer mu.Unlock()
	for c := range topics[topic] {
		c.send(line)
	}
}

func handle(c *client, line string) {
	f := strings.SplitN(line, " ", 3)
	switch {
	case strings.IndexByte(line, 0) >= 0 || len(f) > 1 && f[1] == "":
		c.send("ERR unknown command\n") // a NUL byte, no topic
	case line == "PING":
		c.send("PONG\n")
	case len(f) == 2 && f[0] == "SUB":
		subscribe(c, f[1])
		c.send("OK\n")
	case len(f) == 2 && f[0] == "UNSUB":
		unsubscribe(c, f[1])
		c.send("OK\n")
	case len(f) == 3 && f[0] == "PUB":
		publish(f[1], "MSG"+line[3:]+"\n")
	default:
		c.send("ERR unknown command\n")
	}
}

func serve(ctx context.Context, conn net.Conn) {
	c := &client{conn: conn, out: make(chan string, *queue)}
	go c.write()
	defer close(c.out)
	defer conn.Close()
	defer unsubscribeAll(c) // no publisher can queue a line any more
	done := make(chan struct{})
	defer close(done)
	go func() { // a read cannot wait for ctx: close the connection on SIGTERM
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	r := bufio.NewReaderSize(conn, *maxLine)
	for {
		conn.SetReadDeadline(time.Now().Add(*idle))
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			c.send("ERR line too long\n")
			for err == bufio.ErrBufferFull { // skip the rest of it
				_, err = r.ReadSlice('\n')
			}
		} else if err == nil {
			handle(c, string(line[:len(line)-1]))
		}
		if err != nil { // a last line cut short is dropped
			return
		}
	}
}

func (c *client) write() {
	w := bufio.NewWriter(c.conn)
	for line := range c.out {
		w.WriteString(line)
		if len(c.out) == 0 && w.Flush() != nil {
			break
		}
	}
	c.conn.Close() // wakes the reader if writing failed
}

func main() {
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pubsub:", err)
		os.Exit(1)
	}
	fmt.Println("listening on port", ln.Addr().(*net.TCPAddr).Port)
	if *debugAddr != "" {
		if dl, err := net.Listen("tcp", *debugAddr); err == nil {
			fmt.Println("debug on port", dl.Addr().(*net.TCPAddr).Port)
			go http.Serve(dl, nil)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var clients sync.WaitGroup
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			time.Sleep(10 * time.Millisecond) // out of fds: let some go
			continue
		}
		clients.Add(1)
		go func() {
			defer clients.Done()
			serve(ctx, conn)
		}()
	}
	clients.Wait()
}
