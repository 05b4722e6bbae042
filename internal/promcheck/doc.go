// Package promcheck holds the tests that hold the registry's monitoring to a real Prometheus
// (Debian's prometheus package: the server and promtool): the running services are scraped,
// the Grafana dashboard's expressions and the alert rules of deploy/k8s are evaluated on what
// they export, promtool lints each service's /metrics, and promtool's rule unit tests
// (testdata/alerts.test.yaml) fire every alert. Outside CI, without prometheus and promtool on PATH, the tests skip and say so;
// under CI=true that is a failure.
package promcheck
