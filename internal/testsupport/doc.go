// Package testsupport holds what tests, the demo and the benchmarks run
// against, apart from the production code: a real git server (gitserver,
// gitrepo), a real S3-compatible server (s3server), a real Kubernetes
// apiserver running Argo's controller and agent (controlplane), and the
// child processes they run (testproc). No production package imports
// anything below it (TestProductionNeverImportsTestSupport).
package testsupport
