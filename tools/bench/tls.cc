// Uncontended acquire+release pairs over TLS: the library (RedisLock over a
// TLS pool) against a bare loop that sends the very same two EVALSHA over an
// OpenSSL connection (blocking SSL_write / SSL_read) and parses with
// hiredis' reader — the floor for TLS with these libraries. Also counts TLS
// handshakes per 10,000 locks: a pool keeps its sessions.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness/redis_server.h"
#include "lock/internal/keys.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/token.h"
#include "lock/redis/pool.h"
#include "lock/redis/tls.h"
#include "lock/redis_lock.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

constexpr char kRawPrefix[] = "bench:tlsraw:";

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "bench tls: " << what << "\n";
  std::exit(1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Resp(const std::vector<std::string>& argv) {
  std::string out = absl::StrCat("*", argv.size(), "\r\n");
  for (const std::string& a : argv) absl::StrAppend(&out, "$", a.size(), "\r\n", a, "\r\n");
  return out;
}

// One thread's bare TLS connection and its two prepared requests.
class RawTlsPair {
 public:
  RawTlsPair(SSL_CTX* ctx, int port, const std::string& key, const std::string& token)
      : reader_(redisReaderCreate(), redisReaderFree) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) Die("connect");
    int on = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) Die("SSL_connect");
    const lock::internal::LockKeys keys(kRawPrefix, key);
    acquire_ = Resp(RawAcquireArgs(keys, token, /*fencing=*/true));
    release_ = Resp(RawReleaseArgs(keys, token));
  }
  ~RawTlsPair() {
    SSL_free(ssl_);
    close(fd_);
  }

  bool Run() {
    lock::redis::ReplyPtr a = Call(acquire_);
    lock::redis::ReplyPtr r = Call(release_);
    return a != nullptr && r != nullptr && a->type == REDIS_REPLY_ARRAY && a->elements == 3 &&
           a->element[0]->integer == 1 && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  }

 private:
  lock::redis::ReplyPtr Call(const std::string& request) {
    if (SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) return nullptr;
    char buf[16 * 1024];
    while (true) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader_.get(), &reply) != REDIS_OK) return nullptr;
      if (reply != nullptr) return lock::redis::ReplyPtr(static_cast<redisReply*>(reply));
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return nullptr;
      redisReaderFeed(reader_.get(), buf, static_cast<size_t>(n));
    }
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
  std::string acquire_, release_;
};

}  // namespace

void Tls(const Flags& f) {
  auto started = lock::harness::RedisServer::Start({.name = "bench-tls-redis", .tls = true});
  if (!started.ok()) Die(started.status().ToString());
  lock::harness::RedisServer& server = **started;
  const std::string ca_pem = ReadFile(server.tls_files()->ca_cert);
  {
    ContextPtr admin = RawConnect(server.plain_addr());  // hiredis: plaintext only
    RawLoadScripts(admin.get());
  }
  auto tls = lock::redis::TlsContext::Create({.ca_pem = ca_pem});
  if (!tls.ok()) Die(tls.status().ToString());
  // The bare side's own context, set up as the library's: verified against
  // the CA, TLS 1.2 or later, whole records per read.
  SSL_CTX* raw_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(raw_ctx, TLS1_2_VERSION);
  SSL_CTX_set_read_ahead(raw_ctx, 1);
  SSL_CTX_set_verify(raw_ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(raw_ctx, server.tls_files()->ca_cert.c_str(), nullptr) != 1) {
    Die("cannot load the CA");
  }
  const std::string token = lock::internal::NewOwnerToken();
  for (int threads : f.threads) {
    if (threads != 1 && threads != 16) continue;  // the rows the target names
    std::vector<std::unique_ptr<RawTlsPair>> raw;
    for (int t = 0; t < threads; ++t) {
      raw.push_back(std::make_unique<RawTlsPair>(raw_ctx, server.port(), absl::StrCat("k", t),
                                                 token));
    }
    auto pool = std::make_shared<lock::redis::ConnectionPool>(lock::redis::PoolOptions{
        .connection = {.addr = server.addr(), .tls = *tls}, .max_size = threads});
    auto policy = BenchPolicy("bench:tlslib:");
    std::vector<std::unique_ptr<lock::RedisLock>> locks;
    for (int t = 0; t < threads; ++t) {
      locks.push_back(*lock::internal::NewRedisLock(pool, policy, absl::StrCat("k", t)));
    }
    // Counts the library's handshakes only (the bare side calls SSL_connect).
    const int64_t handshakes_before = lock::redis::TlsHandshakes();
    const AbResult r = Interleave(
        threads, f.seconds, f.phase_ms, [&](int t) { return raw[t]->Run(); },
        [&](int t) { return locks[t]->Acquire().ok() && locks[t]->Release().ok(); });
    const int64_t handshakes = lock::redis::TlsHandshakes() - handshakes_before;
    const double ratio = r.b.per_s / r.a.per_s;
    const double target = 0.9;
    nlohmann::json line = AbFields("tls", threads, r);
    line["handshakes"] = handshakes;
    line["handshakes_per_10k_locks"] =
        Round3(r.b.latency_us.empty() ? 0 : 1e4 * handshakes / r.b.latency_us.size());
    line["target_ratio"] = target;
    line["target_met"] = ratio >= target;
    Emit(line);
  }
  SSL_CTX_free(raw_ctx);
}

}  // namespace bench
