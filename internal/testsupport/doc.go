// Package testsupport holds what tests, the demo and the benchmarks run
// against, apart from the production code: a real git server (gitserver,
// gitrepo) and a real S3-compatible server (s3server). No production
// package imports anything below it (TestProductionNeverImportsTestSupport).
package testsupport
