#include "tools/lockctl/reach.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lock/internal/target.h"
#include "util/status_macros.h"

namespace lockctl {
namespace {

absl::StatusOr<lock::redis::ReplyPtr> CommandVia(lock::redis::ConnectionPool& pool,
                                                 const std::vector<std::string>& argv,
                                                 absl::Duration timeout) {
  ASSIGN_OR_RETURN(lock::redis::PooledConnection conn, pool.Borrow(timeout));
  const std::vector<absl::string_view> views(argv.begin(), argv.end());
  return conn->Command(views, timeout);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Reach>> Reach::For(const policy::RedisTarget& target,
                                                  absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::vector<std::shared_ptr<lock::redis::Topology>> homes,
                   lock::internal::HomesFor(target));
  return std::unique_ptr<Reach>(new Reach(target, std::move(homes), timeout));
}

int Reach::quorum() const {
  return redlock() ? policy::RedlockQuorum(static_cast<int>(homes_.size())) : 1;
}

absl::StatusOr<std::vector<Master>> Reach::Masters() {
  std::vector<Master> out;
  for (const std::shared_ptr<lock::redis::Topology>& home : homes_) {
    ASSIGN_OR_RETURN(std::vector<std::shared_ptr<lock::redis::ConnectionPool>> pools,
                     home->Masters(timeout_));
    for (std::shared_ptr<lock::redis::ConnectionPool>& pool : pools) {
      out.push_back({pool->addr(), std::move(pool)});
    }
  }
  return out;
}

absl::StatusOr<std::string> Reach::AddrFor(size_t home, absl::string_view key) {
  ASSIGN_OR_RETURN(std::shared_ptr<lock::redis::ConnectionPool> pool,
                   homes_.at(home)->PoolFor(key, timeout_));
  return pool->addr();
}

absl::StatusOr<Answer> Reach::Run(size_t home, const lock::internal::PrimitiveCall& call) {
  const std::vector<absl::string_view> keys = call.KeyViews();
  ASSIGN_OR_RETURN(lock::redis::Topology::RunResult run,
                   homes_.at(home)->Run(*call.script, keys, call.ArgViews(),
                                        {.timeout = timeout_}));
  // The master that answered is the one the topology routes the key to now
  // (a redirect during the call has updated its map).
  ASSIGN_OR_RETURN(std::string addr, AddrFor(home, keys.empty() ? "" : keys[0]));
  return Answer{std::move(run.reply), std::move(addr)};
}

absl::StatusOr<Answer> Reach::Command(size_t home, absl::string_view key,
                                      const std::vector<std::string>& argv) {
  ASSIGN_OR_RETURN(std::shared_ptr<lock::redis::ConnectionPool> pool,
                   homes_.at(home)->PoolFor(key, timeout_));
  ASSIGN_OR_RETURN(lock::redis::ReplyPtr reply, CommandVia(*pool, argv, timeout_));
  return Answer{std::move(reply), pool->addr()};
}

absl::StatusOr<lock::redis::ReplyPtr> Reach::CommandOn(const Master& master,
                                                       const std::vector<std::string>& argv) {
  return CommandVia(*master.pool, argv, timeout_);
}

std::string Reach::Where(absl::string_view addr, absl::string_view key) const {
  switch (target_.mode) {
    case policy::RedisMode::kStandalone:
      break;
    case policy::RedisMode::kSentinel:
      return absl::StrCat("master ", addr, " via sentinel ", target_.master_name, " db ",
                          target_.db);
    case policy::RedisMode::kCluster:
      if (key.empty()) return absl::StrCat("cluster master ", addr);
      return absl::StrCat(addr, " (cluster master of slot ", lock::redis::KeySlot(key), ")");
    case policy::RedisMode::kRedlock:
      return absl::StrCat("redlock master ", addr);
  }
  return absl::StrCat(addr, " db ", target_.db);
}

std::string Reach::Describe() {
  switch (target_.mode) {
    case policy::RedisMode::kStandalone:
      return Where(target_.addrs.at(0));
    case policy::RedisMode::kSentinel: {
      absl::StatusOr<std::string> master = AddrFor(0, "");
      return master.ok() ? Where(*master)
                         : absl::StrCat("sentinel ", target_.master_name,
                                        " (no master reachable now)");
    }
    case policy::RedisMode::kCluster: {
      absl::StatusOr<std::vector<Master>> masters = Masters();
      if (!masters.ok()) return absl::StrCat("cluster via ", absl::StrJoin(target_.addrs, ", "));
      return absl::StrCat("cluster masters ",
                          absl::StrJoin(*masters, ", ", [](std::string* out, const Master& m) {
                            out->append(m.addr);
                          }));
    }
    case policy::RedisMode::kRedlock:
      return absl::StrCat("redlock masters ", absl::StrJoin(target_.addrs, ", "), " (quorum ",
                          quorum(), ")");
  }
  return "";
}

}  // namespace lockctl
