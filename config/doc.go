// Package config loads the service's configuration from the environment.
//
// Every setting is an environment variable, declared once on the [Config]
// struct with its default and description (cleanenv tags), so that the
// struct, the README and .env.example describe the same thing. A .env file
// in the working directory is read first when one exists; variables already
// set in the environment win over it.
//
// [Load] validates every value and fails with one line that names the
// variable, the value it was given and what is allowed. Values of secret
// variables (passwords, URLs with credentials) are never echoed: errors show
// them redacted, and [Config.LogValue] redacts them in logs.
package config
