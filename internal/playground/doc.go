// Package playground serves GraphiQL from files embedded in the binary, so
// the playground works in a network with no internet access and under a
// strict Content-Security-Policy.
//
// The page is gqlgen's GraphiQL page (playground.Handler), which by default
// loads GraphiQL, React and ReactDOM from a public CDN. Here it is pointed
// at same-origin copies of the same npm package versions, which
// scripts/fetch-graphiql downloads, checks against the registry's published
// integrity, and writes into assets/ together with each package's license
// and a VERSIONS file. go:embed puts that directory into the binary; nothing
// is fetched at run time.
//
// gqlgen renders its page with html/template, whose reflection makes the
// linker keep every exported method of every reachable type: linked into
// the service it nearly doubled the binary (39.7 MB against 22.3 MB) and
// the memory its mapped pages take. So gqlgen's handler runs at go
// generate time instead (genpage), with placeholders, into page.html; the
// service fills them in by string substitution, and a test holds the result
// to gqlgen's own rendering, byte for byte.
//
// # Routes
//
// Mount registers, on a mux serving the site root:
//
//	GET /                      the GraphiQL page (Handler)
//	GET /playground/assets/... the embedded files (Assets), under AssetPrefix
//
// The page references its scripts and stylesheet under AssetPrefix with
// Subresource Integrity values computed from the embedded bytes when the
// page or a file is first asked for (a process that never serves the
// playground never reads them, and none of them is copied to the heap), so
// an upgrade is a re-run of the script and nothing here changes.
//
// # Example operations
//
// gqlgen's page reads the editor's initial state from the URL's query
// parameters (playground.WithGraphiqlPersistStateInURL). A request without a
// query parameter is redirected to the same URL with query=Examples, so the
// editor opens with one example operation for every root field; after that
// the URL follows the editor, and reloading or sharing it keeps what the
// user typed.
//
// # Content-Security-Policy
//
// The page is sent with a policy that allows scripts, styles, fonts, images
// and connections from its own origin only, and no eval. gqlgen's page has
// one inline script; it is allowed by its sha256 hash, computed from the
// page Handler renders. The page is rendered once and those exact bytes are
// served, so the hash cannot drift from what the browser sees. Inline styles
// are allowed because GraphiQL inserts a <style> element whose text varies
// with the browser (see contentSecurityPolicy); data: URLs are allowed for
// fonts and images because GraphiQL's stylesheet inlines them that way.
// Neither involves the network or runs code.
package playground
