// Command bump-tag writes an image tag into an environment's tag file in the
// charts repo and pushes it, safely under concurrent writers.
package main

import (
	"github.com/slipway-deploy/slipway/internal/bumptagcli"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(bumptagcli.Step()) }
