#include "integration/checker/data_connection.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "integration/checker/workload.h"
#include "lock/redis/reply.h"

namespace lock::checker::driver {

using redis::Connection;
using redis::ReplyPtr;

DataConnection::DataConnection(const nlohmann::json& target, absl::Duration timeout)
    : timeout_(timeout) {
  redis::PoolOptions data;
  data.connection.connect_timeout = timeout;
  data.max_size = 1;
  const std::string mode = target.value("mode", "standalone");
  if (mode == "sentinel") {
    redis::SentinelOptions o;
    o.sentinels = target["sentinels"].get<std::vector<std::string>>();
    o.master_name = target["master_name"].get<std::string>();
    o.data = data;
    topology_ = std::make_unique<redis::SentinelTopology>(std::move(o));
  } else if (mode == "cluster") {
    redis::ClusterOptions o;
    o.seeds = target["addrs"].get<std::vector<std::string>>();
    o.data = data;
    topology_ = std::make_unique<redis::ClusterTopology>(std::move(o));
  } else {
    fixed_addr_ = target["addrs"][0].get<std::string>();
  }
}

absl::StatusOr<ReplyPtr> DataConnection::Cmd(std::initializer_list<absl::string_view> argv) {
  const absl::string_view key = argv.size() > 1 ? *(argv.begin() + 1) : "";
  std::string ask;
  absl::Status last;
  for (int hop = 0; hop < 6; ++hop) {
    std::string addr = ask;
    if (addr.empty()) {
      if (topology_ == nullptr) {
        addr = fixed_addr_;
      } else {
        auto pool = topology_->PoolFor(key, timeout_);
        if (!pool.ok()) return pool.status();
        addr = (*pool)->addr();
      }
    }
    absl::StatusOr<Connection*> conn = Conn(addr);
    if (!conn.ok()) {
      if (topology_ != nullptr) topology_->Invalidate(key, nullptr);
      return conn.status();
    }
    if (!ask.empty()) {
      absl::StatusOr<ReplyPtr> a = (*conn)->Command({"ASKING"}, timeout_);
      if (!a.ok()) return a.status();
    }
    ask.clear();
    absl::StatusOr<ReplyPtr> r = (*conn)->RawCommand(
        absl::MakeConstSpan(argv.begin(), argv.size()), timeout_);
    if (!r.ok()) {
      if (topology_ != nullptr) topology_->Invalidate(key, nullptr);
      return r.status();
    }
    if ((*r)->type != REDIS_REPLY_ERROR) return r;
    const absl::string_view text = redis::ReplyText(**r);
    last = redis::ServerError(text, addr, *argv.begin());
    if (topology_ == nullptr) return last;
    if (absl::StartsWith(text, "TRYAGAIN")) {
      SleepMs(10);
      continue;
    }
    if (absl::StartsWith(text, "MOVED ") || absl::StartsWith(text, "ASK ") ||
        absl::StartsWith(text, "READONLY")) {
      redis::Topology::Retry next = topology_->Invalidate(key, r->get());
      if (next.retry) {
        ask = next.ask;
        continue;
      }
    }
    return last;
  }
  return absl::UnavailableError(
      absl::StrCat("gave up after 6 redirects: ", last.message()));
}

int64_t DataConnection::TimeUs() {
  absl::StatusOr<ReplyPtr> r = Cmd({"TIME"});
  if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) return -1;
  int64_t s = 0, us = 0;
  if (!absl::SimpleAtoi(redis::ReplyText(*(*r)->element[0]), &s) ||
      !absl::SimpleAtoi(redis::ReplyText(*(*r)->element[1]), &us)) {
    return -1;
  }
  return s * 1'000'000 + us;
}

absl::StatusOr<Connection*> DataConnection::Conn(const std::string& addr) {
  std::unique_ptr<Connection>& c = conns_[addr];
  if (c == nullptr || c->broken()) {
    c.reset();
    auto opened = Connection::Open({.addr = addr, .connect_timeout = timeout_});
    if (!opened.ok()) return opened.status();
    c = *std::move(opened);
  }
  return c.get();
}

}  // namespace lock::checker::driver
