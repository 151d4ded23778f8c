//go:build tools

// Package kubo pins the Kubo release orbit's tests and benchmarks run on; tests/kubo_node.py builds
// github.com/ipfs/kubo/cmd/ipfs from this module (go install refuses Kubo's go.mod, which has exclude lines).
package kubo

import _ "github.com/ipfs/kubo/cmd/ipfs"
