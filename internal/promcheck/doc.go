// Package promcheck holds the tests that hold the registry's monitoring to a real Prometheus
// (Debian's prometheus package: the server and promtool): the running services are scraped,
// the Grafana dashboard's expressions are evaluated on what they export, and promtool lints
// each service's /metrics. Outside CI, without prometheus and promtool on PATH, the tests skip and say so;
// under CI=true that is a failure.
package promcheck
