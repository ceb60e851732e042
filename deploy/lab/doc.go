// Package lab runs a real MooseFS 3.0.117 cluster on one Linux machine, one network namespace
// per host, for integration tests and demos. It needs root, iproute2's /run/netns convention,
// nsenter (util-linux) and the Debian MooseFS binaries.
//
// # Layout
//
// A lab named N (1 to 8 lower-case letters or digits, no dash) owns, and only ever touches:
//   - network namespaces /run/netns/N-HOST, one per host, each with `lo` up and one veth end
//     named eth0 holding the host's address;
//   - in the root namespace a bridge N-br (no address) and one veth end N-HOST per host,
//     enslaved to the bridge;
//   - a state directory Config.Dir with, per host, HOST/etc (config files), HOST/master,
//     HOST/metalogger, HOST/chunkserver (DATA_PATHs), HOST/mnt (mount point), HOST/log (one log
//     file per role, stdout and stderr of the process) and HOST/run (one pid file per role).
//
// Names are chosen so that two labs with different names never collide: every interface and
// namespace carries the "N-" prefix and each host has its own network stack, so ports and
// addresses are private to a lab. The subnet defaults to 10.77.X.0/24 with X derived from the
// name; hosts get .10, .11, ... in the order of Config.Hosts and the VIP defaults to .100.
// Nothing is routed to or from the root namespace: the test process reaches a host with
// Lab.Dial, which opens the socket inside the host's namespace.
//
// # Hosts and roles
//
// The production layout (DefaultHosts) is ma (mfsmaster, mfsmetalogger), mb (mfsmetalogger,
// mfschunkserver), c1 (mfschunkserver) and cl (mfsmount). A lab may hold any subset, e.g. ma and
// cl only for tests that need metadata operations alone. Every MooseFS component reaches the
// master only through the VIP: MASTER_HOST = VIP in mfsmetalogger.cfg and mfschunkserver.cfg,
// `mfsmount -H VIP`. Metaloggers, chunkservers and mounts bind their side of the connection to
// the host's own address, so the master sees one stable address per host.
//
// # Processes
//
// Every process runs in the foreground under the lab (`nsenter --net=/run/netns/N-HOST`, which
// keeps the caller's mount namespace so FUSE mounts are visible to it) in its own process group,
// with stdout and stderr appended to HOST/log/ROLE.log. Its pid and start time are written to
// HOST/run/ROLE.pid, so another Lab value (another test process) can stop or kill it. The Start
// methods return once the component is ready (master: answers CLTOMA_INFO on its own address;
// metalogger and chunkserver: listed by the master; mount: stat of the mount point works) or fail
// with an error naming the lab, host, component and the tail of its log.
//
// A lab without a chunkserver serves metadata operations only (mkdir, touch, rename...): a
// write of file data through its mount waits for a chunkserver (mfsmount retries for minutes).
//
// # Failures
//
// KillProcess SIGKILLs one role (and its process group: the master's helper processes too).
// CutLink sets the root end of a host's veth down: a partition, with processes and addresses,
// the VIP included, left as they are. KillHost models a power loss: link cut first (no FIN or
// RST reaches a peer), VIP removed, every process in the namespace SIGKILLed. RestoreLink (or
// Up) plugs the link back in. AddVIP and DelVIP change the address with netlink only;
// AnnounceVIP sends gratuitous ARP as a VIP manager would; VIPOwners tells which namespaces
// have the address and VIPAnswerers which MACs answer ARP for it.
//
// # Teardown
//
// Down and Cleanup SIGKILL every process in the lab's namespaces (found by scanning /proc, plus
// the pid files), detach every mount the lab made, and delete the veths, the bridge and the
// namespaces. Cleanup needs only the name, so a run can clean up after an interrupted one.
//
// # Concurrency
//
// A Lab's methods may be called concurrently, except Up and Down, which must not run at the same
// time as any other method of the same lab.
package lab
