// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and stops them by process id. Nothing here talks to a
// Redis the test did not start.
package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Options describe the server to run.
type Options struct {
	// Password sets requirepass for the default user.
	Password string
	// Config holds extra redis.conf lines, for example ACL "user" lines.
	Config []string
	// TLS, when set, makes the server listen with TLS only.
	TLS *TLS
	// Sentinel runs the process as a Sentinel (redis-server --sentinel);
	// Config then holds its "sentinel ..." lines.
	Sentinel bool
	// Cluster enables cluster mode; the port is chosen so that the bus
	// port (port + 10000) is free too.
	Cluster bool
}

// TLS configures a TLS-only server.
type TLS struct {
	CertFile, KeyFile string
	// CAFile verifies client certificates (and is required by redis-server).
	CAFile string
	// AuthClients makes the server require a client certificate.
	AuthClients bool
	// ClientCertFile and ClientKeyFile are what the helper itself presents
	// when AuthClients is set.
	ClientCertFile, ClientKeyFile string
}

// Server is one redis-server process, restartable on the same port.
type Server struct {
	t    testing.TB
	Port int
	// Addr is 127.0.0.1:Port.
	Addr string
	dir  string
	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// Binary is the redis-server executable; REDIS_SERVER_BIN overrides it.
func Binary() string {
	if b := os.Getenv("REDIS_SERVER_BIN"); b != "" {
		return b
	}
	return "redis-server"
}

// New prepares a server on a free port without starting it, for tests
// where Redis appears only after the service has started.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath(Binary()); err != nil {
		t.Fatalf("redis-server not found (install Debian's redis-server, or set REDIS_SERVER_BIN): %v", err)
	}
	port := FreePort(t)
	if opts.Cluster {
		port = freeClusterPort(t)
	}
	s := &Server{t: t, Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: t.TempDir(), opts: opts}
	t.Cleanup(s.Kill)
	return s
}

// Start returns a running server on a free port, stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	var err error
	// Another process may take the free port before redis-server binds it;
	// a fresh port is the cure.
	for range 3 {
		s := New(t, opts)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatal(err)
	return nil
}

// Start starts (or restarts) the process on its port and waits until it
// answers.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on %s already running", s.Addr)
	}
	conf := filepath.Join(s.dir, "redis.conf")
	lines := []string{
		"port " + strconv.Itoa(s.Port),
		"bind 127.0.0.1",
		"daemonize no",
		"dir " + s.dir,
		"logfile " + filepath.Join(s.dir, "redis.log"),
	}
	if !s.opts.Sentinel {
		// DEBUG SLEEP freezes the server for tests of in-flight requests;
		// Redis 7 refuses DEBUG unless enabled.
		lines = append(lines, `save ""`, "appendonly no", "enable-debug-command local")
	}
	if tc := s.opts.TLS; tc != nil {
		lines = append(lines,
			"port 0",
			"tls-port "+strconv.Itoa(s.Port),
			"tls-cert-file "+tc.CertFile,
			"tls-key-file "+tc.KeyFile,
			"tls-ca-cert-file "+tc.CAFile,
			"tls-auth-clients "+map[bool]string{true: "yes", false: "no"}[tc.AuthClients],
		)
	}
	if s.opts.Cluster {
		lines = append(lines, "cluster-enabled yes", "cluster-config-file nodes.conf")
	}
	if s.opts.Password != "" {
		lines = append(lines, "requirepass "+s.opts.Password)
	}
	lines = append(lines, s.opts.Config...)
	// A Sentinel rewrites its file; write it only on first start so a
	// restart keeps what it learned.
	if _, err := os.Stat(conf); !s.opts.Sentinel || err != nil {
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	args := []string{conf}
	if s.opts.Sentinel {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command(Binary(), args...)
	// If the test binary dies, the server must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	s.cmd, s.exit = cmd, exit
	if err := waitReady(s.dialer(), s.Addr, exit, 10*time.Second); err != nil {
		s.killLocked()
		return fmt.Errorf("redis-server on %s did not come up: %w\n%s", s.Addr, err, s.Log())
	}
	return nil
}

// Kill stops the process with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop stops the process with SIGTERM and waits for it.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	s.waitLocked()
}

func (s *Server) killLocked() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	s.waitLocked()
}

func (s *Server) waitLocked() {
	select {
	case <-s.exit:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Pid is the running process's id, or 0.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Log returns the server's log file.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

// Client returns a plain valkey-go client on db, authenticated as the
// default user, for a test to look at what the service stored.
func (s *Server) Client(t testing.TB, db int) valkey.Client {
	t.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: []string{s.Addr}, Password: s.opts.Password, SelectDB: db,
		DisableCache: true, ForceSingleClient: true, TLSConfig: s.TLSConfig(),
	})
	if err != nil {
		t.Fatalf("connect to %s: %v", s.Addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Do runs one command on db 0 and returns its reply as a string; a nil
// reply is returned as ErrNil.
func (s *Server) Do(t testing.TB, args ...string) (string, error) {
	t.Helper()
	c := s.Client(t, 0)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := c.Do(ctx, c.B().Arbitrary(args...).Build())
	if valkey.IsValkeyNil(res.Error()) {
		return "", ErrNil
	}
	if n, err := res.AsInt64(); err == nil {
		return strconv.FormatInt(n, 10), nil
	}
	if s, err := res.ToString(); err == nil {
		return s, nil
	}
	// Arrays and maps, for tests that only look for a substring.
	v, err := res.ToAny()
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}

// ErrNil is what Do returns for a nil reply.
var ErrNil = errors.New("redis nil reply")

// FreePort returns a loopback TCP port that was free a moment ago. Ports
// are kept below 55536 so that a Cluster node's bus port (port+10000) fits.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port < 55536 {
			return port
		}
	}
	t.Fatal("no free port below 55536")
	return 0
}

// freeClusterPort returns a free port whose cluster bus port is free too.
func freeClusterPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		port := FreePort(t)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// BlackHole listens on a loopback port, accepts connections and never
// answers: a server that is up but hung. It returns the address.
func BlackHole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// dialer opens a plain or TLS connection to the server, as the helper's
// own client (it trusts any server certificate: it is not what is tested).
func (s *Server) dialer() func(addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: time.Second}
	tc := s.opts.TLS
	if tc == nil {
		return func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) }
	}
	cfg := s.TLSConfig()
	return func(addr string) (net.Conn, error) { return tls.DialWithDialer(d, "tcp", addr, cfg) }
}

// TLSConfig is the helper's own client TLS configuration, or nil.
func (s *Server) TLSConfig() *tls.Config {
	tc := s.opts.TLS
	if tc == nil {
		return nil
	}
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the helper checks liveness, not identity
	if tc.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.ClientCertFile, tc.ClientKeyFile)
		if err == nil {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	return cfg
}

// waitReady polls addr with PING until the server answers (a NOAUTH error
// counts: the server is up, it just wants a password).
func waitReady(dial func(string) (net.Conn, error), addr string, exit <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return errors.New("process exited")
		default:
		}
		last = ping(dial, addr)
		if last == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return last
}

func ping(dial func(string) (net.Conn, error), addr string) error {
	conn, err := dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("unexpected reply %q", strings.TrimSpace(line))
}
