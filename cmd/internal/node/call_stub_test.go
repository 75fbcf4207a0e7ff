package node_test

import (
	"testing"

	"github.com/parleyhq/parley/cmd/internal/node"
)

type callT struct{}

func startCall(t *testing.T, n *node.Node, room string) *callT { return &callT{} }
func (c *callT) checkFlowing(t *testing.T)                     {}
