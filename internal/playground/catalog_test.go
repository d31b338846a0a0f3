package playground

// The embedded files as the package loads them, for the tests.
var (
	assets    = loadedCatalog().assets
	pageFiles = loadedCatalog().page
)
