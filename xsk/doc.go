// Package xsk is an AF_XDP socket layer: a UMEM, its fill and completion
// rings, and the RX and TX rings, moved in batches with libxdp's vocabulary
// (reserve/submit on producer rings, peek/release on consumer rings,
// need_wakeup), over golang.org/x/sys/unix. It knows nothing of TCP.
//
// # Frames
//
// The UMEM is split in two pools. RX frames cycle between the fill ring and
// the RX ring: [Socket.Receive] hands out descriptors, [Socket.Recycle]
// gives them back to the fill ring. TX frames live on an O(1) free stack:
// [Socket.Alloc] pops frames to write into, [Socket.Transmit] queues them,
// [Socket.Complete] returns sent frames to the stack.
//
// # Rings
//
// Each ring keeps cached producer and consumer positions; the shared
// positions in the mmap'ed ring are read and published with atomic loads and
// stores only when the cache runs out or a batch is published, as libxdp's
// xsk.h does. A TX batch costs one atomic store and, when the kernel asks for
// it (always in copy mode), one sendto; EAGAIN, EBUSY, ENOBUFS and ENETDOWN
// from that kick are counted, not returned.
//
// # Concurrency
//
// A Socket is not safe for concurrent use: one goroutine (one worker) owns it.
// Close may be called once, by the owner.
//
// # Modes
//
// Bind tries zero-copy first when asked to and falls back to copy mode with
// a reason (veth supports copy mode only); [Socket.ZeroCopy] tells which.
package xsk
