package playground

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// AssetPrefix is the URL path under which Assets serves the embedded files,
// and under which the page references them.
const AssetPrefix = "/playground/assets/"

// files holds what scripts/fetch-graphiql wrote; see doc.go.
//
//go:embed assets
var files embed.FS

// asset is what is known of one embedded file. Its bytes stay in the
// binary's read-only data and are read from there when served: copying
// them to the heap would cost every process their 1.6 MB.
type asset struct {
	sri          string // Subresource Integrity value, "sha256-<base64>"
	contentType  string
	cacheControl string
}

// catalog is the embedded files and the ones the page loads.
type catalog struct {
	// assets maps a path under assets/ to its file.
	assets map[string]asset
	// page are the paths, under assets/, of the files the page loads.
	page pagePaths
}

// loadedCatalog hashes the files once, when the playground is first
// served: a process that never serves it (staging and production, where
// it is off) never reads them.
var loadedCatalog = sync.OnceValue(func() catalog {
	a := mustLoadAssets(files)
	return catalog{assets: a, page: mustFindPageFiles(a)}
})

// The files the page loads, found by pattern rather than named, so that a
// version upgrade is a change to scripts/fetch-graphiql only. Each pattern
// must match exactly one file: two would mean a stale version was left in
// the tree.
var pagePatterns = struct{ js, css, react, reactDOM string }{
	js:       "graphiql-*/graphiql.min.js",
	css:      "graphiql-*/graphiql.min.css",
	react:    "react-[0-9]*/react.production.min.js",
	reactDOM: "react-dom-[0-9]*/react-dom.production.min.js",
}

type pagePaths struct{ js, css, react, reactDOM string }

func mustLoadAssets(fsys fs.FS) map[string]asset {
	m, err := loadAssets(fsys)
	if err != nil {
		// The files are compiled in, so this is a build mistake (the fetch
		// script was not run), which the package's tests catch.
		panic(fmt.Sprintf("playground: %v", err))
	}
	return m
}

// loadAssets reads every file under assets/ and computes its SRI once, so
// requests cost no hashing and the page can be rendered with the values.
// The files are hashed as they are read, never held.
func loadAssets(fsys fs.FS) (map[string]asset, error) {
	sub, err := fs.Sub(fsys, "assets")
	if err != nil {
		return nil, fmt.Errorf("embedded assets: %w", err)
	}
	m := make(map[string]asset)
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		sum, err := sri(sub, name)
		if err != nil {
			return fmt.Errorf("read embedded asset %s: %w", name, err)
		}
		m[name] = asset{
			sri:          sum,
			contentType:  contentType(name),
			cacheControl: cacheControl(name),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded assets: %w", err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("no embedded assets: run scripts/fetch-graphiql")
	}
	return m, nil
}

func mustFindPageFiles(m map[string]asset) pagePaths {
	p, err := findPageFiles(m)
	if err != nil {
		panic(fmt.Sprintf("playground: %v", err))
	}
	return p
}

func findPageFiles(m map[string]asset) (pagePaths, error) {
	var p pagePaths
	for _, f := range []struct {
		pattern string
		dst     *string
	}{
		{pagePatterns.js, &p.js},
		{pagePatterns.css, &p.css},
		{pagePatterns.react, &p.react},
		{pagePatterns.reactDOM, &p.reactDOM},
	} {
		var found []string
		for name := range m {
			if ok, err := path.Match(f.pattern, name); err != nil {
				return p, fmt.Errorf("pattern %q: %w", f.pattern, err)
			} else if ok {
				found = append(found, name)
			}
		}
		if len(found) != 1 {
			return p, fmt.Errorf("want one embedded file matching %s, found %d %v: run scripts/fetch-graphiql", f.pattern, len(found), found)
		}
		*f.dst = found[0]
	}
	return p, nil
}

// sri returns the Subresource Integrity value of the file name in fsys.
// sha256 is what gqlgen pins for the CDN files, so the values can be
// compared with its defaults.
func sri(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256-" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// contentType is decided here rather than by mime.TypeByExtension, which
// consults the host's mime.types and could send JavaScript with a type that
// X-Content-Type-Options: nosniff makes the browser refuse.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "text/plain; charset=utf-8" // LICENSE, VERSIONS
}

// cacheControl lets browsers keep a file for a year when its path names the
// package version (graphiql-4.1.2/...): the fetch script pins each version's
// bytes by integrity, so that URL never changes content. VERSIONS sits at
// the top and changes with every upgrade, so it is revalidated.
func cacheControl(name string) string {
	if strings.Contains(name, "/") {
		return "public, max-age=31536000, immutable"
	}
	return "no-cache"
}

// Assets serves the embedded files under AssetPrefix: the request path must
// start with AssetPrefix. It answers GET and HEAD, with ETag (the file's
// SRI) and Range support through http.ServeContent.
func Assets() http.Handler {
	return http.HandlerFunc(serveAsset)
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix)
	a, found := loadedCatalog().assets[name]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", a.cacheControl)
	h.Set("ETag", `"`+a.sri+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	// The page loads these with crossorigin=anonymous from its own origin;
	// other sites have no reason to embed them.
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	f, err := files.Open("assets/" + name)
	if err != nil {
		http.Error(w, "asset not readable", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	// An embedded file reads and seeks over the binary's own bytes.
	http.ServeContent(w, r, "", time.Time{}, f.(io.ReadSeeker))
}
