package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/school-erp/cache-service/internal/redistest"
)

func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"module version", debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "b092c70c0ffee0123456789"}, {Key: "vcs.modified", Value: "false"},
		}}, "devel-b092c70c0ffe"},
		{"dirty checkout", debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "b092c70"}, {Key: "vcs.modified", Value: "true"},
		}}, "devel-b092c70-dirty"},
		{"nothing recorded", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
	}
	for _, tt := range tests {
		if got := versionFrom(&tt.info); got != tt.want {
			t.Errorf("%s: versionFrom() = %q; want %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionIsShownEverywhere: the version stamped at build time is what
// --version, the start-up line, health details and cache_build_info say.
func TestVersionIsShownEverywhere(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--version", "-version"} {
		out, err := exec.Command(binary, arg).Output()
		want := "cache-service " + testVersion + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
		if err != nil || string(out) != want {
			t.Errorf("cache-service %s = %q, %v; want %q and exit 0", arg, out, err, want)
		}
	}

	srv := redistest.Start(t, redistest.Options{})
	host, port, _ := strings.Cut(srv.Addr, ":")
	p := startBinary(t, map[string]string{"REDIS_HOST": host, "REDIS_PORT": port, "LOG_FORMAT": "json"})
	var starting struct{ Version, GoVersion string }
	for line := range strings.SplitSeq(p.stdout.String(), "\n") {
		if strings.Contains(line, `"msg":"starting"`) {
			_ = json.Unmarshal([]byte(line), &starting)
		}
	}
	if starting.Version != testVersion || starting.GoVersion != runtime.Version() {
		t.Errorf("starting line has version %q, goVersion %q; want %q, %q\n%s", starting.Version, starting.GoVersion, testVersion, runtime.Version(), p.stdout)
	}

	for _, path := range []string{"/health", "/health/redis"} {
		var body struct {
			Data struct{ Version string } `json:"data"`
		}
		getJSONInto(t, p.url+path, "", &body)
		if body.Data.Version != testVersion {
			t.Errorf("GET %s: data.version = %q; want %q", path, body.Data.Version, testVersion)
		}
	}
	var draft struct{ Version string }
	getJSONInto(t, p.url+"/health", "application/health+json", &draft)
	if draft.Version != testVersion {
		t.Errorf("GET /health (health+json): version = %q; want %q", draft.Version, testVersion)
	}

	metrics := scrape(t, p.url+"/metrics")
	sample := `cache_build_info{goversion="` + runtime.Version() + `",version="` + testVersion + `"}`
	if metrics[sample] != 1 {
		t.Errorf("%s = %v; want 1", sample, metrics[sample])
	}
}

func getJSONInto(t *testing.T, url, accept string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode GET %s: %v", url, err)
	}
}
