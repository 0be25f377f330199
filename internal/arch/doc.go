// Package arch holds the test that enforces the package boundaries of
// DESIGN.md ("who may import whom"): lower packages never import upward,
// tcp has no I/O dependency, unsafe and x/sys/unix stay where they belong.
package arch
