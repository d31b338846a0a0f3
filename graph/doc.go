// Package graph is the service's GraphQL API: gqlgen's executable schema
// (generated.go, from schema.graphqls), its resolvers, and what the
// service puts around gqlgen so that the API is bounded, truthful and
// cheap.
//
// A request goes through:
//
//   - front.go: the one handler; it sends a WebSocket upgrade to the
//     socket registry and a POST to the compiled paths before gqlgen.
//   - request.go: the HTTP transports (JSON POST, GET for queries,
//     OPTIONS, 415 for any other POST), with their coded errors.
//   - compiled.go, scan.go: the compiled read path, and compiledwrites.go,
//     writes.go the compiled write path: plans learned from documents
//     gqlgen has validated, answered without gqlgen's executor, byte for
//     byte as gqlgen would (compiled_test.go, compiledwrites_test.go).
//   - limits.go, budget.go, doccache.go, directives.go: shape and
//     complexity limits, the response budget, the bounded document
//     caches, and @auth.
//   - errors.go, outcomes.go, values.go, text.go: coded errors and
//     partial results, warnings, the JSON scalar's values, UTF-8 checks.
//
// Subscriptions travel over WebSocket (graphql-transport-ws):
//
//   - sockets.go, protocol.go: the registry of open sockets (admission,
//     bounds, keep-alive, shutdown, token revocation) and what the socket
//     reads before gqlgen does (4409, 4429).
//   - live.go: the compiled path of cacheChanged, which gqlgen would run
//     with a goroutine and an execution per subscriber;
//     subscriptions.go: the resolvers gqlgen runs for the rest.
//   - wsconn.go: the coder/websocket connection, and the cork that sends
//     a socket's batch of events in one write.
//
// handler.go assembles it all (NewHandler), with one configuration for
// gqlgen's executor and for the executor the live path admits with.
package graph
