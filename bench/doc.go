// Package bench holds Strata's whole-system benchmarks: it drives a bare
// metal API (Strata's undercloud, or OpenStack Ironic as the incumbent)
// through the Ironic v1 API with one load client, and measures the server
// processes from outside (/proc), so that both are measured alike.
//
// The benchmarks themselves are in the package's test files and run with
// `make bench` (go test -run '^$' -bench . -benchtime 1x ./bench/).
package bench
