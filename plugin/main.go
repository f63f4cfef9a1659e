// Command promoter is the Argo Workflows executor plugin that promotes a
// release to the next environment; the logic is in internal/promoterserver
// and internal/promotion.
package main

import (
	"github.com/slipway-deploy/slipway/internal/promoterserver"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(promoterserver.Step()) }
