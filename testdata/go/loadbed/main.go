// Command loadbed is the test bed for gocost load: an HTTP server with a known latency. Every
// request waits -delay; every -every, the server stalls for -stall (requests arriving during
// a stall wait for its end, as behind a stop-the-world pause or a full connection pool), so a
// load generator's percentiles can be checked against the analytic ones. /status/N answers
// status N; /reset closes the connection without an answer. It listens on 127.0.0.1 and
// writes its address to the file named by its first argument.
//
// For `gocost load --profile` it serves net/http/pprof and expvar under /debug/ (never
// stalled), and makes what the runtime does visible: each request allocates -alloc bytes of
// garbage and hashes them (GC cycles, CPU samples), and each stall is a batch job that holds
// -burst bytes of heap and -fanout parked goroutines while it runs, as a cache rebuild that
// takes a lock would. With -tls FILE it serves HTTPS with a self-signed certificate for
// 127.0.0.1, written to FILE as PEM (for `gocost load --cacert`).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	_ "expvar"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	delay    = flag.Duration("delay", 20*time.Millisecond, "latency of every request")
	stall    = flag.Duration("stall", 0, "length of each stall (0: none)")
	every    = flag.Duration("every", 10*time.Second, "time from one stall's start to the next")
	duration = flag.Duration("duration", 5*time.Minute, "exit after this long")
	alloc    = flag.Int("alloc", 0, "bytes of garbage each request allocates and hashes")
	burst    = flag.Int("burst", 0, "bytes of heap each stall holds while it runs")
	fanout   = flag.Int("fanout", 0, "goroutines each stall parks while it runs")
	tlsCert  = flag.String("tls", "", "serve HTTPS; write the self-signed certificate (PEM) to this file")
	h2c      = flag.Bool("h2c", false, "also serve HTTP/2 without TLS (prior knowledge); HTTPS offers h2 always")
	sink     atomic.Pointer[[sha256.Size]byte]
	started  = time.Now()
	served   atomic.Int64
	conns    atomic.Int64 // connections accepted
	h2served atomic.Int64 // requests that came over HTTP/2
)

// stallEnd is when the stall that `t` falls in ends, or `t` outside stalls. Stalls start at
// started + k·every.
func stallEnd(t time.Time) time.Time {
	if *stall <= 0 {
		return t
	}
	since := t.Sub(started)
	phase := since % *every
	if phase < *stall {
		return t.Add(*stall - phase)
	}
	return t
}

// batches runs the stalls' batch jobs: at each stall's start, hold -burst bytes and park
// -fanout goroutines until the stall ends.
func batches() {
	for k := 1; ; k++ {
		time.Sleep(time.Until(started.Add(time.Duration(k) * *every)))
		end := time.Now().Add(*stall)
		held := make([]byte, *burst)
		for i := 0; i < len(held); i += 4096 {
			held[i] = 1
		}
		var wg sync.WaitGroup
		for i := 0; i < *fanout; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Until(end))
			}()
		}
		wg.Wait()
		time.Sleep(time.Until(end))
		held[0] = 2
	}
}

func handle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if *alloc > 0 {
		b := make([]byte, *alloc)
		for i := range b {
			b[i] = byte(i)
		}
		sum := sha256.Sum256(b)
		sink.Store(&sum)
	}
	if end := stallEnd(now); end.After(now) {
		time.Sleep(end.Sub(now))
	}
	time.Sleep(*delay)
	served.Add(1)
	if r.ProtoMajor == 2 {
		h2served.Add(1)
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
		code, _ := strconv.Atoi(rest)
		w.WriteHeader(code)
		return
	}
	if r.URL.Path == "/reset" {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
	}
	if r.URL.Path == "/served" {
		fmt.Fprintln(w, served.Load())
		return
	}
	if r.URL.Path == "/conns" {
		fmt.Fprintf(w, "connections %d\nhttp2 %d\n", conns.Load(), h2served.Load())
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// selfSigned makes a certificate for 127.0.0.1 and writes it to path as PEM.
func selfSigned(path string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "loadbed"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func main() {
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(*h2c)
	if *tlsCert != "" {
		cert, err := selfSigned(*tlsCert)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if flag.NArg() > 0 {
		if err := os.WriteFile(flag.Arg(0), []byte(ln.Addr().String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	go func() {
		time.Sleep(*duration)
		os.Exit(0)
	}()
	started = time.Now()
	if *stall > 0 && (*burst > 0 || *fanout > 0) {
		go batches()
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/", http.DefaultServeMux)
	mux.HandleFunc("/", handle)
	srv.Handler = mux
	if *tlsCert != "" {
		_ = srv.ServeTLS(ln, "", "") // offers h2 and http/1.1 by ALPN
		return
	}
	_ = srv.Serve(ln)
}
