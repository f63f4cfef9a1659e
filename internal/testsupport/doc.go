// Package testsupport holds what tests, the demo and the benchmarks run
// against, apart from the production code: a real git server (gitserver,
// gitrepo), a real S3-compatible server (s3server), a loopback stand-in
// for a Slack incoming webhook (slackserver), the machine's test databases
// (dbtest), a step run as a process of its own (proctest) and a buffer
// safe to read while it is written (syncbuffer). No production package
// imports anything below it (TestProductionNeverImportsTestSupport).
package testsupport
