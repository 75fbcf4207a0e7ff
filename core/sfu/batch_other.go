//go:build !(linux && (amd64 || arm64))

package sfu

import "net"

// batchSys is unavailable here: the media socket never batches.
type batchSys struct{}

// batchState is empty where there is no sendmmsg.
type batchState struct{}

func (*batchState) init(*sendBatch) {}

func newBatchSys(*net.UDPConn) *batchSys { return nil }

func (*batchSys) send(b *sendBatch) int { return b.n }
