// Package doccheck holds no code: its tests keep the repository's reference docs and comments
// honest. The docs state what is true now (no commit hashes, no run-by-run narrative), every
// benchmark command they give names a benchmark that exists, and figures live in BENCHMARKS.md
// next to the command that reproduces them, never in a code comment where they would go stale.
package doccheck
