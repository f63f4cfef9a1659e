// Command controlplane-check is a smoke check of the control plane that
// hack/controlplane.sh builds: it starts etcd and kube-apiserver on loopback
// (free ports, a scratch folder, token auth, a serving certificate made here),
// waits for /readyz, makes authenticated and unauthenticated requests, and
// stops them again, apiserver first. It prints how long each part took.
//
//	hack/controlplane.sh && go run ./hack/controlplane-check
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.bin, "bin", "", "folder holding etcd and kube-apiserver (default: the one hack/controlplane.sh --print-dir names)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the scratch folder (data, logs, certificates) and print its path")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "controlplane-check: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "controlplane-check: %v\n", err)
		os.Exit(1)
	}
}
