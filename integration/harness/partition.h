// A network partition between Redis and its clients, made of two network
// namespaces joined by a veth pair: the server side (10.213.0.1) and the
// client side (10.213.0.2). Cut() takes the link down, so that every packet
// between the two sides is lost (connections stall, new ones time out, as
// across a real partition: no reset, no refusal); Heal() brings it back.
// Everything lives inside the two namespaces: the machine's own interfaces,
// routes and firewall are never touched, and each side has its own loopback.
//
// One process, the test's (as in a GoogleTest of your service):
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Partition> partition, Partition::Create());
//   // This thread, and every thread it starts from now on (the lock
//   // library's included), lives on the client side until `partition` dies.
//   RETURN_IF_ERROR(partition->EnterClientSide());
//   ASSIGN_OR_RETURN(auto redis, RedisServer::Start(partition->ServerOptions()));
//   Connect(redis->addr());                       // "10.213.0.1:<port>"
//   {
//     Partition::ScopedCut cut = partition->CutUntilScopeExit();
//     ...                                         // Redis unreachable
//   }                                             // healed here
//
// Several processes (the checker's partition scenario): a process enters a
// side with EnterNetworkNamespace() before it starts any thread, e.g. Redis
// and most workers on the server side, one worker on the client side that
// alone loses Redis on Cut().
//
// Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's `ip`; Create()
// says which step failed otherwise (testing.h turns that into a skip). The
// container backend runs a partitioned server with podman's
// `--network ns:/run/netns/<name>`; docker cannot join a named namespace.
#ifndef INTEGRATION_HARNESS_PARTITION_H_
#define INTEGRATION_HARNESS_PARTITION_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "integration/harness/redis_server.h"

namespace lock::harness {

// Moves the calling thread into the network namespace /run/netns/<name>.
// Threads it starts afterwards (and processes it forks) inherit it; threads
// that exist already stay where they are, which is why a process should
// call it before starting any. kUnavailable naming the namespace and errno.
absl::Status EnterNetworkNamespace(const std::string& name);

class Partition {
 public:
  // The server side's address on the veth pair, and the client side's.
  static constexpr char kServerAddress[] = "10.213.0.1";
  static constexpr char kClientAddress[] = "10.213.0.2";

  // Makes the two namespaces (named after this process and a counter, so
  // several may exist at once) with their loopbacks up and the link up.
  // kUnavailable, naming the step that failed and why, where namespaces
  // cannot be made (not root, no `ip`, a kernel without veth).
  static absl::StatusOr<std::unique_ptr<Partition>> Create();

  // Heals, moves the thread that called EnterClientSide() back to where it
  // was (call the destructor on that thread), and deletes both namespaces.
  // Servers started in them should be stopped first.
  ~Partition();

  Partition(const Partition&) = delete;
  Partition& operator=(const Partition&) = delete;

  // For EnterNetworkNamespace() and RedisServerOptions::network_namespace.
  const std::string& server_namespace() const { return server_ns_; }
  const std::string& client_namespace() const { return client_ns_; }

  // `base` with the server placed on the server side and reached at
  // kServerAddress: start it from the client side (after EnterClientSide())
  // so that the harness's own commands cross the partition too.
  RedisServerOptions ServerOptions(RedisServerOptions base = {}) const;

  // Moves the calling thread onto the client side, remembering where it
  // was; the destructor moves it back. Call it before starting the threads
  // that should be cut off (lock::InitFromJson starts the library's).
  // kFailedPrecondition when called twice.
  absl::Status EnterClientSide();

  // Takes the link down / up. Both are idempotent.
  absl::Status Cut();
  absl::Status Heal();
  bool cut() const { return cut_; }

  // Cut() now, Heal() when the scope ends (a failed Heal() is printed to
  // stderr: a destructor has nobody to return it to).
  class [[nodiscard]] ScopedCut {
   public:
    ScopedCut(ScopedCut&& other) noexcept
        : partition_(other.partition_), status_(other.status_) {
      other.partition_ = nullptr;
    }
    ScopedCut& operator=(ScopedCut&&) = delete;
    ~ScopedCut();
    // What Cut() returned: check it before relying on the cut.
    const absl::Status& status() const { return status_; }

   private:
    friend class Partition;
    explicit ScopedCut(Partition* partition);
    Partition* partition_;
    absl::Status status_;
  };
  ScopedCut CutUntilScopeExit() { return ScopedCut(this); }

 private:
  Partition(std::string server_ns, std::string client_ns,
            std::string server_if, std::string client_if);
  absl::Status SetLink(bool up);

  const std::string server_ns_, client_ns_, server_if_, client_if_;
  bool created_ = false;  // Something exists that the destructor removes.
  bool cut_ = false;
  int home_ns_fd_ = -1;   // EnterClientSide(): the thread's namespace before.
};

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_PARTITION_H_
