package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/school-erp/cache-service/cache"
	"github.com/school-erp/cache-service/config"
	"github.com/school-erp/cache-service/internal/auth"
	"github.com/school-erp/cache-service/internal/metrics"
	"github.com/school-erp/cache-service/internal/ratelimit"
	"github.com/school-erp/cache-service/internal/redistest"
)

const kubernetesDir = "deploy/kubernetes"

// kubernetes is deploy/kubernetes, each file decoded strictly into the
// Kubernetes API's own types: a misspelt or misplaced field is an error
// here, as it is for kubectl's server-side validation.
type kubernetes struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
}

func loadKubernetes(t *testing.T) kubernetes {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubernetesDir, err)
	}
	var k kubernetes
	var resources []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			APIVersion string   `json:"apiVersion"`
			Kind       string   `json:"kind"`
			Resources  []string `json:"resources"`
		}
		if err := yaml.Unmarshal(b, &meta); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var into any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			k.deployment = &appsv1.Deployment{}
			into = k.deployment
		case "v1 Service":
			k.service = &corev1.Service{}
			into = k.service
		case "policy/v1 PodDisruptionBudget":
			k.pdb = &policyv1.PodDisruptionBudget{}
			into = k.pdb
		case "kustomize.config.k8s.io/v1beta1 Kustomization":
			resources = meta.Resources
			continue
		default:
			t.Fatalf("%s: %s %s; the test knows Deployment, Service, PodDisruptionBudget and Kustomization", file, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			t.Fatalf("%s does not decode as a %s: %v", file, meta.Kind, err)
		}
	}
	if k.deployment == nil || k.service == nil || k.pdb == nil {
		t.Fatalf("%s lacks a Deployment, a Service or a PodDisruptionBudget", kubernetesDir)
	}
	var listed []string
	for _, file := range files {
		if name := filepath.Base(file); name != "kustomization.yaml" {
			listed = append(listed, name)
		}
	}
	slices.Sort(resources)
	if !slices.Equal(resources, listed) {
		t.Errorf("kustomization.yaml resources = %v; want every manifest: %v", resources, listed)
	}
	return k
}

func (k kubernetes) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := k.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the Deployment has %d containers; want 1", len(cs))
	}
	return cs[0]
}

// portOf resolves a probe's or a Service's port, by number or name.
func portOf(t *testing.T, c corev1.Container, p intstr.IntOrString) int {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	t.Fatalf("no container port named %q", p.StrVal)
	return 0
}

// deploymentConfig loads the configuration the container would run with:
// its literal variables as they are, those from the Secret with stand-ins
// of the right form. Whatever fails to load here would stop the pod.
func deploymentConfig(t *testing.T, k kubernetes) *config.Config {
	t.Helper()
	c := k.container(t)
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref == nil {
			t.Fatalf("%s comes from %+v; the test knows Secret references", e.Name, e.ValueFrom)
		}
		switch e.Name {
		case "REDIS_URL":
			// Production wants TLS: the Secret must hold a rediss:// URL.
			env[e.Name] = "rediss://:stand-in-password@127.0.0.1:" + itoa(redistest.FreePort(t)) + "/0"
		default:
			env[e.Name] = "stand-in for " + ref.Name + "/" + ref.Key
		}
	}
	if path, ok := env["API_TOKENS_FILE"]; ok {
		file := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(file, []byte("erp:write:stand-in-token-0123456789\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env["API_TOKENS_FILE"] = file
	}
	cfg, err := config.Load(func(name string) string { return env[name] }, nil)
	if err != nil {
		t.Fatalf("the Deployment's environment does not load: %v", err)
	}
	return cfg
}

// TestKubernetesManifestsMatchTheService checks deploy/kubernetes against
// the service itself, so that a route, a port or a default that changes
// fails here rather than in a rollout.
func TestKubernetesManifestsMatchTheService(t *testing.T) {
	t.Parallel()
	k := loadKubernetes(t)
	c := k.container(t)
	pod := k.deployment.Spec.Template.Spec
	cfg := deploymentConfig(t, k)

	t.Run("ports are the configuration's", func(t *testing.T) {
		if cfg.AppEnv != config.EnvProduction {
			t.Errorf("APP_ENV = %s; want production", cfg.AppEnv)
		}
		if cfg.ListenHost != "" {
			t.Errorf("the service would listen on %q; a pod must listen on every interface (its probes and Service reach it on the pod's address)", cfg.ListenHost)
		}
		if got := portOf(t, c, intstr.FromString("http")); got != cfg.Port {
			t.Errorf("container port http = %d; the service listens on PORT %d", got, cfg.Port)
		}
		if got := portOf(t, c, intstr.FromString("metrics")); got != cfg.MetricsPort {
			t.Errorf("container port metrics = %d; METRICS_PORT is %d", got, cfg.MetricsPort)
		}
		ann := k.deployment.Spec.Template.Annotations
		if ann["prometheus.io/port"] != strconv.Itoa(cfg.MetricsPort) || ann["prometheus.io/path"] != "/metrics" {
			t.Errorf("prometheus annotations %v; want port %d and path /metrics", ann, cfg.MetricsPort)
		}
		if got := portOf(t, c, k.service.Spec.Ports[0].TargetPort); len(k.service.Spec.Ports) != 1 || got != cfg.Port {
			t.Errorf("the Service sends traffic to port %d; the service listens on %d", got, cfg.Port)
		}
	})

	t.Run("probes hit the service's routes", func(t *testing.T) {
		srv := probeHandler(t, cfg)
		probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
		for name, p := range probes {
			if p == nil || p.HTTPGet == nil {
				t.Fatalf("%s probe = %+v; want an httpGet probe", name, p)
			}
			if got := portOf(t, c, p.HTTPGet.Port); got != cfg.Port {
				t.Errorf("%s probe port = %d; the service listens on %d", name, got, cfg.Port)
			}
		}
		if code, _ := serveGET(srv, c.LivenessProbe.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("liveness GET %s = %d with Redis unreachable; want 200 (a Redis outage must not restart pods)", c.LivenessProbe.HTTPGet.Path, code)
		}
		code, body := serveGET(srv, c.ReadinessProbe.HTTPGet.Path)
		var ready struct {
			Data struct{ Status string } `json:"data"`
		}
		if err := json.Unmarshal(body, &ready); err != nil || (code != http.StatusOK && code != http.StatusServiceUnavailable) || ready.Data.Status == "" {
			t.Errorf("readiness GET %s = %d %s; want /readyz's answer", c.ReadinessProbe.HTTPGet.Path, code, body)
		}
		if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/livez" {
			t.Errorf("probes on %s (liveness) and %s (readiness); README's probe table says /livez and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
		}
		if code, _ := serveGET(srv, "/no-such-route"); code != http.StatusNotFound {
			t.Errorf("GET /no-such-route = %d; want 404, or the checks above prove nothing", code)
		}
	})

	t.Run("probe timings are README's", func(t *testing.T) {
		table := readmeProbeTable(t)
		for name, p := range map[string]*corev1.Probe{"Kubernetes liveness": c.LivenessProbe, "Kubernetes readiness": c.ReadinessProbe} {
			row, ok := table[name]
			if !ok {
				t.Fatalf("README's probe table has no %q row", name)
			}
			if row.path != p.HTTPGet.Path {
				t.Errorf("%s: README says GET %s, the manifest %s", name, row.path, p.HTTPGet.Path)
			}
			got := map[string]int32{"periodSeconds": p.PeriodSeconds, "timeoutSeconds": p.TimeoutSeconds, "failureThreshold": p.FailureThreshold, "successThreshold": p.SuccessThreshold}
			for field, want := range row.settings {
				if got[field] != want {
					t.Errorf("%s: %s = %d in the manifest; README says %d", name, field, got[field], want)
				}
			}
		}
		// README, Probers: the drain outlasts the readiness probe's
		// verdict, and the grace period the drain and the shutdown.
		r := c.ReadinessProbe
		if verdict := time.Duration(r.PeriodSeconds*r.FailureThreshold) * time.Second; cfg.ShutdownDrainDelay < verdict {
			t.Errorf("SHUTDOWN_DRAIN_DELAY = %s; want at least readiness periodSeconds x failureThreshold = %s", cfg.ShutdownDrainDelay, verdict)
		}
		grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		if need := cfg.ShutdownDrainDelay + cfg.ShutdownTimeout + 2*time.Second; grace <= need {
			t.Errorf("terminationGracePeriodSeconds = %s; want above SHUTDOWN_DRAIN_DELAY + SHUTDOWN_TIMEOUT + 2s = %s", grace, need)
		}
	})

	t.Run("the container is locked down", func(t *testing.T) {
		uid := imageUID(t)
		psc, sc := pod.SecurityContext, c.SecurityContext
		switch {
		case psc == nil || sc == nil:
			t.Fatal("the pod or the container has no securityContext")
		case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
			t.Error("runAsNonRoot is not true")
		case psc.RunAsUser == nil || *psc.RunAsUser != uid:
			t.Errorf("runAsUser = %v; want %d, the image's cache-service user", psc.RunAsUser, uid)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Error("the container is privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("capabilities = %+v; want all dropped and none added", sc.Capabilities)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Error("automountServiceAccountToken is not false: the service needs no Kubernetes API token")
		}
		if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
			t.Error("enableServiceLinks is not false: a Service named redis would set REDIS_PORT=tcp://... in the environment")
		}
	})

	t.Run("secrets come from a Secret", func(t *testing.T) {
		var secretNames []string
		for _, e := range c.Env {
			secret := e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
			if slices.Contains([]string{"REDIS_URL", "REDIS_PASSWORD", "API_TOKENS", "REDIS_SENTINEL_PASSWORD"}, e.Name) && !secret {
				t.Errorf("%s is a literal in the manifest; want it from a Secret", e.Name)
			}
			if secret {
				secretNames = append(secretNames, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		if _, ok := envValue(c, "REDIS_URL"); !ok {
			t.Error("REDIS_URL is not set from the Secret")
		}
		path, ok := envValue(c, "API_TOKENS_FILE")
		if !ok {
			t.Fatal("API_TOKENS_FILE is not set: the tokens must come from the Secret")
		}
		var mounted bool
		for _, m := range c.VolumeMounts {
			if !strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				continue
			}
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.Secret != nil && m.ReadOnly {
					mounted = true
					secretNames = append(secretNames, v.Secret.SecretName)
					key := strings.TrimPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
					if len(v.Secret.Items) > 0 && !slices.ContainsFunc(v.Secret.Items, func(i corev1.KeyToPath) bool { return i.Path == key }) {
						t.Errorf("API_TOKENS_FILE %s: the Secret volume has no item at %s", path, key)
					}
				}
			}
		}
		if !mounted {
			t.Errorf("API_TOKENS_FILE %s is not in a read-only mount of a Secret", path)
		}
		if names := slices.Compact(slices.Sorted(slices.Values(secretNames))); len(names) != 1 {
			t.Errorf("Secrets referenced: %v; want one Secret for all", names)
		}
	})

	t.Run("the Service and the PodDisruptionBudget select the pods", func(t *testing.T) {
		labels := k.deployment.Spec.Template.Labels
		matches := func(selector map[string]string) bool {
			for key, v := range selector {
				if labels[key] != v {
					return false
				}
			}
			return len(selector) > 0
		}
		if !matches(k.deployment.Spec.Selector.MatchLabels) {
			t.Error("the Deployment's selector does not match its pod labels")
		}
		if !matches(k.service.Spec.Selector) {
			t.Errorf("the Service selects %v; the pods have %v", k.service.Spec.Selector, labels)
		}
		if k.pdb.Spec.Selector == nil || !matches(k.pdb.Spec.Selector.MatchLabels) {
			t.Errorf("the PodDisruptionBudget selects %v; the pods have %v", k.pdb.Spec.Selector, labels)
		}
		replicas := int32(1)
		if k.deployment.Spec.Replicas != nil {
			replicas = *k.deployment.Spec.Replicas
		}
		if m := k.pdb.Spec.MinAvailable; m == nil || m.Type != intstr.Int || m.IntVal < 1 || int32(m.IntVal) >= replicas {
			t.Errorf("minAvailable = %v with %d replicas; want at least 1 and fewer than the replicas, or a node drain blocks", m, replicas)
		}
	})
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// probeHandler is the service's own handler for cfg, with a cache client
// whose Redis is not there: probes must not depend on it.
func probeHandler(t *testing.T, cfg *config.Config) http.Handler {
	t.Helper()
	client, err := cache.New(cacheOptions(cfg, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	authn := auth.New(authTokens(cfg.Tokens))
	limiter, err := ratelimit.New(rateLimits(cfg, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(limiter.Close)
	return newServer(slog.New(slog.DiscardHandler), cfg, deps{cache: client, metrics: metrics.New(), auth: authn, limiter: limiter, draining: new(atomic.Bool)})
}

func serveGET(h http.Handler, path string) (int, []byte) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.Bytes()
}

type probeRow struct {
	path     string
	settings map[string]int32
}

// readmeProbeTable reads README's Probers table: endpoint and the
// `field: N` settings of each prober.
func readmeProbeTable(t *testing.T) map[string]probeRow {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (Kubernetes \\w+) \\| `GET (\\S+)` \\|.*$")
	setting := regexp.MustCompile("`(\\w+): (\\d+)`")
	out := map[string]probeRow{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		r := probeRow{path: m[2], settings: map[string]int32{}}
		for _, s := range setting.FindAllStringSubmatch(m[0], -1) {
			n, _ := strconv.Atoi(s[2])
			r.settings[s[1]] = int32(n)
		}
		out[m[1]] = r
	}
	return out
}

// imageUID is the uid of the image's user, from deploy/container/passwd,
// and the one its Containerfile runs as.
func imageUID(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("deploy/container/passwd")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Split(strings.TrimSpace(string(b)), ":")
	if len(fields) < 3 {
		t.Fatalf("deploy/container/passwd = %q", b)
	}
	uid, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := os.ReadFile("deploy/container/Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	if want := "\nUSER " + fields[2] + ":" + fields[3] + "\n"; !strings.Contains(string(cf), want) {
		t.Errorf("the Containerfile does not run as %s:%s, the user in deploy/container/passwd", fields[2], fields[3])
	}
	return uid
}
