// Package config reads a service's settings from command-line flags with an environment variable
// behind each flag.
//
// Services define every setting as a flag on a *flag.FlagSet (so the flag set is the single,
// enumerable definition of their configuration) and call Parse. A flag given on the command line
// wins; otherwise the environment variable named by EnvName is used if it is set (even to the empty
// string); otherwise the flag keeps its default. Describe lists every setting with its variable,
// for documentation and for tests that check deployment manifests against the real definitions.
//
// Variables carry no service prefix: NATS_URL means the same thing to every service and to the
// nats CLI's users, and a Kubernetes container's environment belongs to one service anyway.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// ErrEnvCollision is returned by Parse when two flags of one set map to the same variable.
var ErrEnvCollision = errors.New("config: two flags map to one environment variable")

// EnvError reports an environment variable whose value the flag it stands for refuses.
type EnvError struct {
	// Var is the environment variable, for example NATS_CONNECT_TIMEOUT.
	Var string
	// Flag is the flag name without dashes, for example nats-connect-timeout.
	Flag string
	// Value is the variable's value.
	Value string
	// Err is the flag's parse error.
	Err error
}

// Error names the variable, the flag and the value.
func (e *EnvError) Error() string {
	return fmt.Sprintf("config: environment variable %s=%q (flag -%s): %v", e.Var, e.Value, e.Flag, e.Err)
}

// Unwrap returns the flag's parse error.
func (e *EnvError) Unwrap() error { return e.Err }

// EnvName returns the environment variable behind a flag: the flag name in upper case with every
// '-' and '.' replaced by '_'. So nats-url is NATS_URL and http-addr is HTTP_ADDR.
func EnvName(flagName string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// Parse parses args into fs, then sets every flag not given in args from its environment
// variable (see EnvName) if that is set. It returns flag.ErrHelp for -h as fs.Parse does, and an
// *EnvError for a variable whose value the flag refuses.
func Parse(fs *flag.FlagSet, args []string) error {
	return ParseWithLookup(fs, args, os.LookupEnv)
}

// ParseWithLookup is Parse reading variables through lookupEnv instead of os.LookupEnv, so that
// tests can run in parallel without changing the process environment.
func ParseWithLookup(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	if err := checkCollisions(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, &EnvError{Var: name, Flag: f.Name, Value: v, Err: err})
		}
	})
	return errors.Join(errs...)
}

// Setting describes one flag of a flag set and the environment variable behind it.
type Setting struct {
	// Flag is the flag name without dashes.
	Flag string
	// Env is the environment variable, EnvName(Flag).
	Env string
	// Default is the flag's default value as text.
	Default string
	// Usage is the flag's help text.
	Usage string
}

// Describe lists every flag defined on fs, sorted by flag name.
func Describe(fs *flag.FlagSet) []Setting {
	var out []Setting
	fs.VisitAll(func(f *flag.Flag) {
		out = append(out, Setting{Flag: f.Name, Env: EnvName(f.Name), Default: f.DefValue, Usage: f.Usage})
	})
	return out
}

// Usage returns a function for fs.Usage that prints every flag with its variable and default.
func Usage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage of %s (each flag may also be set by its environment variable):\n", fs.Name())
		for _, s := range Describe(fs) {
			fmt.Fprintf(w, "  -%s  (%s", s.Flag, s.Env)
			if s.Default != "" {
				fmt.Fprintf(w, ", default %q", s.Default)
			}
			fmt.Fprintf(w, ")\n    \t%s\n", s.Usage)
		}
	}
}

func checkCollisions(fs *flag.FlagSet) error {
	seen := map[string]string{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		if other, ok := seen[env]; ok && err == nil {
			err = fmt.Errorf("%w: -%s and -%s are both %s", ErrEnvCollision, other, f.Name, env)
		}
		seen[env] = f.Name
	})
	return err
}
