// Command mutantreport writes MUTANTS.md from gremlins' JSON results, as
// scripts/mutants leaves them in .mutants/: per package the score, what was
// covered, the command and its wall time, and every mutant that survived
// with the source line it changed and, when one is recorded in the notes
// file, why it is equivalent (a change no user can observe).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// results is the part of gremlins' -o output the report uses.
type results struct {
	Efficacy  float64 `json:"test_efficacy"`
	Coverage  float64 `json:"mutations_coverage"`
	Killed    int     `json:"mutants_killed"`
	Lived     int     `json:"mutants_lived"`
	NotViable int     `json:"mutants_not_viable"`
	NotCover  int     `json:"mutants_not_covered"`
	Elapsed   float64 `json:"elapsed_time"`
	Files     []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

func main() {
	dir := flag.String("dir", ".mutants", "where scripts/mutants left the results")
	notesFile := flag.String("notes", "scripts/mutants-equivalent.txt", "why each listed survivor is equivalent")
	runsFile := flag.String("runs", "scripts/mutants-runs.md", "what was measured about the runs, appended as it is")
	flag.Parse()
	notes, err := readNotes(*notesFile)
	if err != nil {
		fail(err)
	}
	if err := write(os.Stdout, *dir, notes); err != nil {
		fail(err)
	}
	if runs, err := os.ReadFile(*runsFile); err == nil {
		fmt.Printf("\n%s", runs)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutantreport:", err)
	os.Exit(1)
}

// readNotes reads lines "pkg/file.go:line:column TYPE reason"; # starts a
// comment.
func readNotes(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	notes := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where, rest, _ := strings.Cut(line, " ")
		kind, reason, _ := strings.Cut(rest, " ")
		notes[where+" "+kind] = strings.TrimSpace(reason)
	}
	return notes, sc.Err()
}

func readText(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func write(w io.Writer, dir string, notes map[string]string) error {
	statuses, _ := filepath.Glob(filepath.Join(dir, "*.status"))
	slices.Sort(statuses)
	fmt.Fprintln(w, "# Mutation testing")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Written by `make mutants` (scripts/mutants, scripts/mutantreport) from")
	fmt.Fprintln(w, "gremlins' results: each mutant is one small change to the code (a")
	fmt.Fprintln(w, "condition negated, `<` made `<=`, `+` made `-`...), and the package's tests")
	fmt.Fprintln(w, "are run against it. Killed: a test failed. Lived: every test passed, so")
	fmt.Fprintln(w, "no test notices that change. Efficacy is killed / (killed + lived);")
	fmt.Fprintln(w, "mutants on lines no test runs are \"not covered\" and not run. Survivors")
	fmt.Fprintln(w, "are listed below, each with why it is equivalent (no user can observe")
	fmt.Fprintln(w, "it) where that was established (scripts/mutants-equivalent.txt), or")
	fmt.Fprintln(w, "\"not explained\": a test is missing.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A kill is a failing test run, so a test that fails by chance (a timed")
	fmt.Fprintln(w, "test on a loaded machine) kills whatever mutant it ran against: run it")
	fmt.Fprintln(w, "on a quiet machine, and read a survivor that was killed in an earlier run")
	fmt.Fprintln(w, "as one such chance.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| package | files mutated | killed | lived | timed out | not viable | not covered | efficacy | wall time |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	type survivor struct{ where, kind, source, note string }
	var survivors = map[string][]survivor{}
	var pkgs []string
	for _, st := range statuses {
		pkg := strings.TrimSuffix(filepath.Base(st), ".status")
		pkgs = append(pkgs, pkg)
		files := readText(filepath.Join(dir, pkg+".files"))
		if files == "" {
			files = "all but generated code"
		}
		secs, _ := strconv.Atoi(readText(filepath.Join(dir, pkg+".seconds")))
		wall := (time.Duration(secs) * time.Second).String()
		b, err := os.ReadFile(filepath.Join(dir, pkg+".json"))
		if err != nil || readText(st) != "0" {
			fmt.Fprintf(w, "| %s | %s | did not finish (exit status %s; see .mutants/%s.log) | | | | | | %s |\n", pkg, files, readText(st), pkg, wall)
			continue
		}
		var r results
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", pkg, err)
		}
		timedOut := 0
		for _, f := range r.Files {
			for _, m := range f.Mutations {
				switch m.Status {
				case "TIMED OUT":
					timedOut++
				case "LIVED":
					where := fmt.Sprintf("%s/%s:%d:%d", pkg, f.Name, m.Line, m.Column)
					note := notes[where+" "+m.Type]
					if note == "" {
						note = "not explained"
					}
					survivors[pkg] = append(survivors[pkg], survivor{where, m.Type, sourceLine(filepath.Join(pkg, f.Name), m.Line), note})
				}
			}
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %d | %.1f%% | %s |\n", pkg, files, r.Killed, r.Lived, timedOut, r.NotViable, r.NotCover, r.Efficacy, wall)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Efficacy is gremlins' own: killed / (killed + lived). A mutant that timed")
	fmt.Fprintln(w, "out (its test run took longer than the bound) is in neither count; a test")
	fmt.Fprintln(w, "run notices it too, by the time it takes.")
	fmt.Fprintln(w)
	for _, pkg := range pkgs {
		if left := notMutated(pkg, readText(filepath.Join(dir, pkg+".files"))); len(left) > 0 {
			fmt.Fprintf(w, "Not mutated in this run of %s: %s.\n\n", pkg, strings.Join(left, ", "))
		}
	}
	fmt.Fprintln(w, "## Commands")
	fmt.Fprintln(w)
	for _, pkg := range pkgs {
		fmt.Fprintf(w, "- %s: `%s`\n", pkg, readText(filepath.Join(dir, pkg+".command")))
	}
	for _, pkg := range pkgs {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "## Survivors in %s\n", pkg)
		fmt.Fprintln(w)
		if len(survivors[pkg]) == 0 {
			fmt.Fprintln(w, "None.")
			continue
		}
		for _, s := range survivors[pkg] {
			fmt.Fprintf(w, "- `%s` %s: `%s`  \n  %s\n", s.where, s.kind, s.source, s.note)
		}
	}
	return nil
}

// sourceLine is line n of path, trimmed, for the reader to see what the
// mutant changed.
func sourceLine(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	lines := strings.Split(string(b), "\n")
	if n < 1 || n > len(lines) {
		return "?"
	}
	return strings.ReplaceAll(strings.TrimSpace(lines[n-1]), "`", "'")
}

// notMutated lists the package's own source files (not tests, not
// generated code) that a run limited to files left out.
func notMutated(pkg, files string) []string {
	if files == "" {
		return nil
	}
	chosen := strings.Fields(files)
	if !slices.ContainsFunc(chosen, func(f string) bool { return strings.HasPrefix(f, pkg+"/") }) {
		return nil
	}
	paths, _ := filepath.Glob(filepath.Join(pkg, "*.go"))
	var left []string
	for _, p := range paths {
		p = filepath.ToSlash(p)
		if strings.HasSuffix(p, "_test.go") || strings.HasSuffix(p, "generated.go") || strings.HasSuffix(p, "_gen.go") || strings.HasSuffix(p, "/doc.go") || slices.Contains(chosen, p) {
			continue
		}
		left = append(left, "`"+p+"`")
	}
	return left
}
