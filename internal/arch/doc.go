// Package arch holds the test that enforces the package boundaries of
// docs/architecture.md ("who may import whom"): it reads that table, so the
// picture and the import graph cannot drift apart.
package arch
