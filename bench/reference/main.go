// Command reference is the smallest Go HTTP front to Redis that bench/run
// compares the service with: net/http and valkey-go with their defaults, no
// GraphQL, no auth, no limits, no metrics. It exists for the comparison
// only and is not part of the product.
//
//	GET /get?key=K          the value at K, raw (404 when missing)
//	PUT /set?key=K[&ttl=S]  body stored at K (with EX S when given); 204
//	GET /health             200 {"status":"ok"}, without asking Redis
//
// Flags (each with an environment default): -listen (REF_LISTEN,
// 127.0.0.1:8080), -redis (REF_REDIS_ADDR, 127.0.0.1:6379),
// -client-cache (REF_CLIENT_CACHE, false): GET with valkey-go's DoCache and
// -cache-ttl (REF_CACHE_TTL, 60s, the service's REDIS_CLIENT_CACHE_TTL
// default) instead of Do.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/valkey-io/valkey-go"
)

// maxBody bounds a PUT body, as the service's CACHE_MAX_VALUE_BYTES default.
const maxBody = 1 << 20

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "reference:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string) error {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("reference", flag.ContinueOnError)
	listen := fs.String("listen", env("REF_LISTEN", "127.0.0.1:8080"), "address to serve HTTP on")
	redisAddr := fs.String("redis", env("REF_REDIS_ADDR", "127.0.0.1:6379"), "Redis address")
	clientCache, err := strconv.ParseBool(env("REF_CLIENT_CACHE", "false"))
	if err != nil {
		return fmt.Errorf("REF_CLIENT_CACHE: %w", err)
	}
	fs.BoolVar(&clientCache, "client-cache", clientCache, "read with DoCache (client-side caching) instead of Do")
	ttl, err := time.ParseDuration(env("REF_CACHE_TTL", "60s"))
	if err != nil {
		return fmt.Errorf("REF_CACHE_TTL: %w", err)
	}
	fs.DurationVar(&ttl, "cache-ttl", ttl, "longest time DoCache keeps a value locally")
	if err := fs.Parse(args); err != nil {
		return err
	}

	client, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:  []string{*redisAddr},
		DisableCache: !clientCache,
	})
	if err != nil {
		return err
	}
	defer client.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(client, clientCache, ttl), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("reference: serving on %s, redis %s, client cache %t", ln.Addr(), *redisAddr, clientCache)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func handler(client valkey.Client, clientCache bool, ttl time.Duration) http.Handler {
	mux := http.NewServeMux()
	health := []byte(`{"status":"ok"}`)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(health)
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		if key == "" {
			http.Error(w, "key required", http.StatusBadRequest)
			return
		}
		var res valkey.ValkeyResult
		if clientCache {
			res = client.DoCache(r.Context(), client.B().Get().Key(key).Cache(), ttl)
		} else {
			res = client.Do(r.Context(), client.B().Get().Key(key).Build())
		}
		v, err := res.AsBytes()
		switch {
		case valkey.IsValkeyNil(err):
			http.Error(w, "not found", http.StatusNotFound)
		case r.Context().Err() != nil:
			// The client went away (wrk closing its connections at the end).
		case err != nil:
			log.Printf("reference: GET %q: %v", key, err)
			http.Error(w, "redis error", http.StatusBadGateway)
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(v)
		}
	})
	mux.HandleFunc("PUT /set", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		key := q.Get("key")
		if key == "" {
			http.Error(w, "key required", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "body too large or unreadable", http.StatusBadRequest)
			return
		}
		set := client.B().Set().Key(key).Value(valkey.BinaryString(body))
		var cmd valkey.Completed
		if s := q.Get("ttl"); s != "" {
			secs, err := strconv.ParseInt(s, 10, 64)
			if err != nil || secs <= 0 {
				http.Error(w, "ttl: want a positive integer", http.StatusBadRequest)
				return
			}
			cmd = set.ExSeconds(secs).Build()
		} else {
			cmd = set.Build()
		}
		if err := client.Do(r.Context(), cmd).Error(); err != nil {
			if r.Context().Err() != nil {
				return // the client went away
			}
			log.Printf("reference: SET %q: %v", key, err)
			http.Error(w, "redis error", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
