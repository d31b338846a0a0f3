// Package config loads the service's configuration from environment
// variables.
//
// Every setting is an environment variable, declared once on the [Config]
// struct with its default and description (caarlos0/env tags: env,
// envDefault, envDescription), so that the struct, the README and
// .env.example describe the same thing. [Load] takes the environment as a
// function (os.Getenv in production) and the variables of a .env file as a
// map ([ReadDotenv]); the environment wins over the file. It never reads or
// changes the process environment itself, so tests load configurations in
// parallel.
//
// [Load] validates every value and fails with one line that names the
// variable, the value it was given and what is allowed. Values of secret
// variables (passwords, URLs with credentials) are never echoed: errors show
// them redacted, and [Config.LogValue] redacts them in logs.
package config
