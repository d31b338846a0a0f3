package main

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/school-erp/cache-service/config"
)

// TestHelpListsEveryVariable: -h is a request, not a mistake: it exits 0
// and lists, beside the flags, every variable with its default and its
// description as the configuration declares them.
func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help", "-help"} {
		cmd := exec.Command(binary, arg)
		cmd.Dir = t.TempDir()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("cache-service %s: %v; want exit 0\n%s", arg, err, stderr.String())
			continue
		}
		if stderr.Len() > 0 {
			t.Errorf("cache-service %s wrote to stderr: %q", arg, stderr.String())
		}
		out := stdout.String()
		for _, flag := range []string{"-check-config", "-env-file", "-version"} {
			if !strings.Contains(out, "  "+flag) {
				t.Errorf("cache-service %s does not list the flag %s", arg, flag)
			}
		}
		vars := config.Variables()
		if len(vars) != len(config.Names()) {
			t.Fatalf("config.Variables() has %d entries; config.Names() %d", len(vars), len(config.Names()))
		}
		for _, v := range vars {
			head := "  " + v.Name + "\n"
			if v.Default != "" {
				head = "  " + v.Name + " (default " + strconv.Quote(v.Default) + ")\n"
			}
			if !strings.Contains(out, head+"    \t"+v.Description+"\n") {
				t.Errorf("cache-service %s does not list %s with its default and description", arg, v.Name)
			}
		}
	}
}

func TestUnknownFlagIsOneLineAndExitsNonZero(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "--no-such-flag")
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() != 1 {
		t.Fatalf("exit = %v; want status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "no-such-flag") || !strings.Contains(lines[0], "cache-service -h") {
		t.Errorf("stderr = %q; want one line naming the flag and pointing at -h", stderr.String())
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout = %q; want nothing", stdout.String())
	}
}
