package raftstore

import "fmt"

// Rolling upgrades. A replica records a command of a kind its binary does
// not know as a bad command, so its state would drift from the others'.
// Each node therefore registers the highest kind it knows (MaxKind), and a
// proposer refuses, with ErrUpgradePending, any command of a kind that a
// registered node does not know. New kinds are proposed only once every
// node runs a binary that knows them.

// maxKind is the highest command kind this binary knows.
const maxKind = KindForgetIdempotency

// legacyMaxKind is what a node that registered without MaxKind knows:
// binaries before the field ended at the outbox placeholder.
const legacyMaxKind CommandKind = 10

// knows returns the highest kind a registered node knows.
func (n NodeRecord) knows() CommandKind {
	if n.MaxKind == 0 {
		return legacyMaxKind
	}
	return n.MaxKind
}

// checkKind refuses a command kind that a registered node of the local
// replica does not know. Nodes marked down are skipped: they re-register
// (with their binary's MaxKind) before they take part again.
func (s *Store) checkKind(k CommandKind) error {
	if k <= legacyMaxKind {
		return nil
	}
	var err error
	s.fsm.read(func(st *state) {
		for _, id := range sortedKeys(st.Nodes) {
			if n := st.Nodes[id]; !n.Down && n.knows() < k {
				err = fmt.Errorf("%w: node %s knows command kinds up to %d, not %v", ErrUpgradePending, id, n.knows(), k)
				return
			}
		}
	})
	return err
}
