// Package testsupport holds what tests, the demo and the benchmarks run
// against, apart from the production code: a real git server (gitserver,
// gitrepo), a real S3-compatible server (s3server) and a loopback stand-in
// for a Slack incoming webhook (slackserver). No production
// package imports anything below it (TestProductionNeverImportsTestSupport).
package testsupport
