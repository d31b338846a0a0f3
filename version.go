package main

import (
	"runtime/debug"
	"strings"
)

// version is stamped at build time: go build -ldflags "-X main.version=1.2.3"
// (make build does it, from git describe). Empty in any other build.
var version string

// buildVersion is the version the binary reports in --version, the start-up
// log line, health details and the cache_build_info metric: the stamped one,
// or else what the Go toolchain recorded (the module version of a
// `go install ...@v1.2.3`, or the pseudo-version and revision of a build in a
// git checkout), or "devel" when nothing was recorded (go run, go test).
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return versionFrom(info)
}

func versionFrom(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "devel"
	}
	revision = revision[:min(12, len(revision))]
	if modified == "true" {
		revision += "-dirty"
	}
	return "devel-" + strings.TrimSpace(revision)
}
