#include "integration/checker/history.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace lock::checker {
namespace {

constexpr const char* kWriteNames[] = {"none", "accepted", "rejected", "failed",
                                       "unknown"};

// nlohmann is built with JSON_NOEXCEPTION, where a type error aborts: every
// field is type-checked before it is read.
bool GetInt(const nlohmann::json& j, const char* name, int64_t* out) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}
bool GetBool(const nlohmann::json& j, const char* name, bool* out) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_boolean()) return false;
  *out = it->get<bool>();
  return true;
}
bool GetString(const nlohmann::json& j, const char* name, std::string* out) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

nlohmann::json Identity(const char* event, const Op& op) {
  return {{"e", event}, {"p", op.process}, {"t", op.thread},
          {"op", op.id},  {"key", op.key}};
}

void AddAcquisition(const Op& op, nlohmann::json* j) {
  if (op.kind != "mutex") {  // mutex lines stay as they were before kinds
    (*j)["kind"] = op.kind;
    (*j)["read"] = op.read;
    (*j)["permits"] = op.permits;
  }
  (*j)["lease_end_redis_us"] = op.lease_end_redis_us;
  (*j)["fence"] = op.fence;
  (*j)["owner"] = op.owner;
  (*j)["owner_checked"] = op.owner_checked;
  (*j)["owner_verified"] = op.owner_verified;
  (*j)["call_steady_ns"] = op.call_steady_ns;
  (*j)["enter_steady_ns"] = op.enter_steady_ns;
  (*j)["enter_redis_us"] = op.enter_redis_us;
}

void AddWrite(const Op& op, nlohmann::json* j) {
  (*j)["write"] = WriteOutcomeName(op.write);
  (*j)["write_value"] = op.write_value;
  (*j)["write_begin_steady_ns"] = op.write_begin_steady_ns;
  (*j)["write_end_steady_ns"] = op.write_end_steady_ns;
}

// Reads whatever fields `j` has into `op`; false when a field is present
// with the wrong type or an identity field is missing.
bool ReadOp(const nlohmann::json& j, Op* op) {
  int64_t process = 0, thread = 0;
  if (!GetInt(j, "p", &process) || !GetInt(j, "t", &thread) ||
      !GetInt(j, "op", &op->id) || !GetString(j, "key", &op->key)) {
    return false;
  }
  op->process = static_cast<int>(process);
  op->thread = static_cast<int>(thread);
  for (const char* f : {"fence", "call_steady_ns", "enter_steady_ns", "exit_steady_ns",
                        "enter_redis_us", "exit_redis_us", "lease_end_redis_us",
                        "permits", "write_value",
                        "write_begin_steady_ns", "write_end_steady_ns"}) {
    if (j.contains(f) && !j[f].is_number_integer()) return false;
  }
  GetInt(j, "fence", &op->fence);
  GetInt(j, "call_steady_ns", &op->call_steady_ns);
  GetInt(j, "enter_steady_ns", &op->enter_steady_ns);
  GetInt(j, "exit_steady_ns", &op->exit_steady_ns);
  GetInt(j, "enter_redis_us", &op->enter_redis_us);
  GetInt(j, "exit_redis_us", &op->exit_redis_us);
  GetInt(j, "lease_end_redis_us", &op->lease_end_redis_us);
  int64_t permits = 0;
  if (GetInt(j, "permits", &permits)) op->permits = static_cast<int>(permits);
  GetString(j, "kind", &op->kind);
  GetBool(j, "read", &op->read);
  GetInt(j, "write_value", &op->write_value);
  GetInt(j, "write_begin_steady_ns", &op->write_begin_steady_ns);
  GetInt(j, "write_end_steady_ns", &op->write_end_steady_ns);
  GetString(j, "owner", &op->owner);
  GetBool(j, "owner_checked", &op->owner_checked);
  GetBool(j, "owner_verified", &op->owner_verified);
  GetBool(j, "entered", &op->entered);
  GetBool(j, "lost", &op->lost);
  GetString(j, "result", &op->result);
  GetString(j, "message", &op->message);
  std::string write;
  if (GetString(j, "write", &write) && !WriteOutcomeFromName(write, &op->write)) {
    return false;
  }
  return true;
}

}  // namespace

const char* WriteOutcomeName(WriteOutcome w) {
  return kWriteNames[static_cast<int>(w)];
}

bool WriteOutcomeFromName(const std::string& name, WriteOutcome* out) {
  for (int i = 0; i < 5; ++i) {
    if (name == kWriteNames[i]) {
      *out = static_cast<WriteOutcome>(i);
      return true;
    }
  }
  return false;
}

nlohmann::json EnterEvent(const Op& op) {
  nlohmann::json j = Identity("enter", op);
  AddAcquisition(op, &j);
  return j;
}

nlohmann::json WriteEvent(const Op& op) {
  nlohmann::json j = Identity("write", op);
  j["fence"] = op.fence;
  j["write_value"] = op.write_value;
  j["write_begin_steady_ns"] = op.write_begin_steady_ns;
  return j;
}

nlohmann::json OpEvent(const Op& op) {
  nlohmann::json j = Identity("op", op);
  j["entered"] = op.entered;
  AddAcquisition(op, &j);
  j["exit_steady_ns"] = op.exit_steady_ns;
  j["exit_redis_us"] = op.exit_redis_us;
  AddWrite(op, &j);
  j["lost"] = op.lost;
  j["result"] = op.result;
  if (!op.message.empty()) j["message"] = op.message;
  return j;
}

nlohmann::json SummaryEvent(int process, int64_t ops) {
  return {{"e", "summary"}, {"p", process}, {"ops", ops}};
}

absl::StatusOr<std::unique_ptr<HistoryWriter>> HistoryWriter::Open(
    const std::string& path) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<HistoryWriter>(new HistoryWriter(fd));
}

HistoryWriter::~HistoryWriter() { close(fd_); }

absl::Status HistoryWriter::Append(const nlohmann::json& event) {
  const std::string line = event.dump() + "\n";
  // O_APPEND plus a single write keeps lines of concurrent threads whole.
  const ssize_t n = write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    return absl::InternalError(
        absl::StrCat("history write: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status HistoryBuilder::AddText(const std::string& text,
                                     const std::string& source) {
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    ++line_no;
    if (nl == std::string::npos) {
      // No newline: the writer died in the middle of this line.
      notes_.push_back(absl::StrCat(source, ":", line_no,
                                    ": truncated last line ignored"));
      break;
    }
    const std::string line = text.substr(start, nl - start);
    start = nl + 1;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": not a JSON object"));
    }
    absl::Status s = AddEvent(j, absl::StrCat(source, ":", line_no));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status HistoryBuilder::AddEvent(const nlohmann::json& j,
                                      const std::string& where) {
  std::string e;
  if (!GetString(j, "e", &e)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no event name"));
  }
  if (e == "summary") {
    int64_t p = 0, ops = 0;
    if (!GetInt(j, "p", &p) || !GetInt(j, "ops", &ops)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": bad summary"));
    }
    if (summaries_.count(static_cast<int>(p))) {
      problems_.push_back(absl::StrCat(where, ": second summary of process ", p));
    }
    summaries_[static_cast<int>(p)] = ProcessSummary{static_cast<int>(p), ops};
    return absl::OkStatus();
  }
  Op op;
  if (!ReadOp(j, &op)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": bad \"", e, "\" event"));
  }
  Pending& p = pending_[{op.process, op.id}];
  bool* seen = e == "enter"   ? &p.has_enter
               : e == "write" ? &p.has_write
               : e == "op"    ? &p.has_op
                              : nullptr;
  if (seen == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown event \"", e, "\""));
  }
  if (*seen) {
    problems_.push_back(absl::StrCat("process ", op.process, " op ", op.id,
                                     ": duplicate \"", e, "\" line (", where,
                                     ")"));
    return absl::OkStatus();
  }
  *seen = true;
  (e == "enter" ? p.enter : e == "write" ? p.write : p.op) = std::move(op);
  return absl::OkStatus();
}

History HistoryBuilder::Finish() {
  History h;
  std::set<int> processes;
  for (auto& [id, p] : pending_) {
    processes.insert(id.first);
    if (p.has_op) {
      Op op = p.op;
      if (p.has_enter && (!op.entered || op.fence != p.enter.fence)) {
        h.problems.push_back(absl::StrCat(
            "process ", id.first, " op ", id.second,
            ": final record disagrees with its enter line"));
      }
      h.ops.push_back(std::move(op));
      continue;
    }
    // The process died before this operation finished.
    Op op = p.has_enter ? p.enter : p.write;
    op.entered = p.has_enter;
    op.died = true;
    op.result = "DIED";
    if (p.has_write) {
      op.write = WriteOutcome::kUnknown;
      op.write_value = p.write.write_value;
      op.write_begin_steady_ns = p.write.write_begin_steady_ns;
    }
    h.ops.push_back(std::move(op));
  }
  for (const auto& [process, s] : summaries_) processes.insert(process);
  h.summaries = summaries_;
  h.processes.assign(processes.begin(), processes.end());
  h.problems.insert(h.problems.end(), problems_.begin(), problems_.end());
  h.notes = notes_;
  return h;
}

absl::StatusOr<History> ReadHistory(const std::vector<std::string>& paths) {
  HistoryBuilder builder;
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    std::stringstream text;
    text << in.rdbuf();
    absl::Status s = builder.AddText(text.str(), path);
    if (!s.ok()) return s;
  }
  return builder.Finish();
}

}  // namespace lock::checker
