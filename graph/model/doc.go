// Package model holds the GraphQL schema's types as Go types: those gqlgen
// generates from schema.graphqls (models_gen.go) and the scalars written
// here (JSON, Int64).
package model
