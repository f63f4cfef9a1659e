// Package testsupport holds what tests, the demo and the benchmarks run
// against, apart from the production code: a real git server (gitserver,
// gitrepo), a real S3-compatible server (s3server), a real Kubernetes
// apiserver running Argo's controller and agent (controlplane), a loopback
// stand-in for a Slack incoming webhook (slackserver), the machine's test
// databases (dbtest), a step run as a process under test (proctest), the
// server processes a test starts and stops (serverproc) and a buffer safe
// to read while it is written (syncbuffer). No production package imports
// anything below it (TestProductionNeverImportsTestSupport).
package testsupport
