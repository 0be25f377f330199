// Package lab builds and removes the network laboratory xdpconnect is tested
// and demonstrated on: a client and a server network namespace joined by a
// veth pair (optionally through a router namespace), addresses from the
// benchmarking range 198.18.0.0/15, optional netem impairments, and a Linux
// TCP listener in the server namespace that counts what it accepts.
//
// # Ownership
//
// Every namespace a Lab creates carries the prefix [Prefix] and the lab's
// unique name, so [DownStale] can find and remove leftovers of a crashed run (labs of live owners stay).
// Interfaces live only inside those namespaces: the lab never touches an
// interface of the namespace it was called from.
//
// # Threads
//
// Namespace switches are done on a locked OS thread that is discarded
// afterwards (the goroutine returns without unlocking), so no other goroutine
// ever runs in a namespace it did not ask for.
package lab
