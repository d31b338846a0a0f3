package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/school-erp/cache-service/config"
)

// TestLogsShowDurationsReadably: a duration reads the same in JSON logs as
// in text logs ("1.5ms"), never as bare nanoseconds, nested in groups too.
func TestLogsShowDurationsReadably(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		env := map[string]string{"LOG_FORMAT": format, "REDIS_COMMAND_TIMEOUT": "250ms"}
		cfg, err := config.Load(func(name string) string { return env[name] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		newLogger(cfg, &buf).Info("starting", slog.Duration("latency", 1500*time.Microsecond), slog.Any("config", cfg))
		out := buf.String()
		if format == "text" {
			for _, want := range []string{"latency=1.5ms", "config.redis.commandTimeout=250ms"} {
				if !strings.Contains(out, want) {
					t.Errorf("text log %q lacks %s", out, want)
				}
			}
			continue
		}
		var line struct {
			Latency any `json:"latency"`
			Config  struct {
				Redis struct {
					CommandTimeout any `json:"commandTimeout"`
				} `json:"redis"`
			} `json:"config"`
		}
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("JSON log %q: %v", out, err)
		}
		if line.Latency != "1.5ms" || line.Config.Redis.CommandTimeout != "250ms" {
			t.Errorf("JSON log has latency %v, config.redis.commandTimeout %v; want \"1.5ms\" and \"250ms\"\n%s", line.Latency, line.Config.Redis.CommandTimeout, out)
		}
	}
}
