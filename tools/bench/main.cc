// Benchmarks of the lock library. Every scenario prints JSON lines and
// measures its baseline in the same run, interleaved with the library in
// short alternating phases, so results are ratios that survive a noisy,
// shared machine. Benchmarks are programs, never timed tests.
//
//   bazel run -c opt //tools/bench -- [--scenario=all] [--seconds=6] ...
//   (bench --help lists every flag)
//
// Scenarios:
//   uncontended  acquire+release pairs/s at 1,4,16,64 threads on distinct
//                keys vs bare hiredis sending the same EVALSHA round trips
//                on as many connections.
//   handoff      K waiters on one key: release-to-next-holder latency,
//                throughput and idle fraction vs the PING round trip.
//   renewal      10k/100k auto-renewed locks: CPU, round trips per period,
//                memory per held lock.
//   redlock      quorum of 3/5 masters vs one master, acquire+release
//                latency.
//   cluster      pairs/s on a 3-master cluster vs one standalone node.
//   kinds        read and semaphore pairs vs bare hiredis sending the same
//                scripts; fair handoff among 32 waiters vs the PING round
//                trip; semaphore (8 permits, 32 contenders), fair and mutex
//                utilisation.
//   async        10,000 AcquireAsync pending on one key: threads, heap per
//                pending acquire, grants one after another; handoff among 32
//                contenders, AcquireAsync vs the blocking With in the same
//                run; deadline precision and cancellation latency of With
//                and AcquireAsync.
//   overhead     policy lookup, key validation, token generation, NewLock:
//                ns per call, no Redis involved.
//   pairs        (not in "all") a fixed number of raw and library pairs on
//                one thread, for instruction counts under callgrind.
//   peer         (not in "all") one worker of the comparison with other
//                libraries, driven over stdin by tools/bench/peers/run.py
//                against its redis-server (peer.cc).
// The scenarios that need one server start their own unless --redis is
// given; redlock and cluster always start their own fleets.
#include <iostream>
#include <memory>

#include "integration/harness/redis_server.h"
#include "tools/bench/common.h"

int main(int argc, char** argv) {
  const bench::Flags f = bench::ParseFlags(argc, argv);
  if (bench::Wants(f, "peer")) {
    bench::Peer();
    return 0;
  }
  std::unique_ptr<lock::harness::RedisServer> server;
  std::string addr = f.redis;
  int server_pid = 0;
  const bool one_server = bench::Wants(f, "uncontended") || bench::Wants(f, "handoff") ||
                          bench::Wants(f, "renewal") || bench::Wants(f, "pairs") ||
                          bench::Wants(f, "kinds") || bench::Wants(f, "async");
  if (addr.empty() && one_server) {
    auto started = lock::harness::RedisServer::Start({.name = "bench-redis"});
    if (!started.ok()) {
      std::cerr << "bench: " << started.status() << "\n";
      return 1;
    }
    server = *std::move(started);
    addr = server->addr();
    server_pid = server->pid();
  }
  if (bench::Wants(f, "overhead")) bench::Overhead(f);
  if (bench::Wants(f, "pairs")) bench::Pairs(f, addr);
  if (bench::Wants(f, "uncontended")) bench::Uncontended(f, addr);
  if (bench::Wants(f, "handoff")) bench::Handoff(f, addr);
  if (bench::Wants(f, "kinds")) bench::Kinds(f, addr);
  if (bench::Wants(f, "async")) bench::Async(f, addr);
  if (bench::Wants(f, "redlock")) bench::Redlock(f);
  if (bench::Wants(f, "cluster")) bench::Cluster(f);
  if (bench::Wants(f, "tls")) bench::Tls(f);
  if (bench::Wants(f, "renewal")) bench::Renewal(f, addr, server_pid);
  return 0;
}
