// What Linux's /proc/<pid>/stat says about a process.
#ifndef UTIL_PROC_H_
#define UTIL_PROC_H_

#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace util {

// The fields of /proc/<pid>/stat after "pid (comm) " (the command name may
// hold spaces and parentheses): [0] is field 3 of proc(5), the state; [11]
// and [12] are utime and stime in clock ticks. Empty when there is no such
// process.
inline std::vector<std::string> ProcStatFields(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  const std::string contents(std::istreambuf_iterator<char>(stat), {});
  const size_t comm_end = contents.rfind(')');
  if (comm_end == std::string::npos || comm_end + 2 >= contents.size()) return {};
  std::istringstream rest(contents.substr(comm_end + 2));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// True when `pid` is reaped or a zombie (state Z or X): an orphan may wait
// for a reaper for a while, yet it no longer runs.
inline bool ProcessGone(pid_t pid) {
  const std::vector<std::string> fields = ProcStatFields(pid);
  return fields.empty() || fields[0] == "Z" || fields[0] == "X";
}

// The threads `pid` runs now (field 20 of proc(5), num_threads); -1 when
// there is no such process. Tests and benchmarks read it to show that
// waiting costs no thread.
inline int ProcessThreads(pid_t pid = getpid()) {
  const std::vector<std::string> fields = ProcStatFields(pid);
  return fields.size() > 17 ? std::stoi(fields[17]) : -1;
}

}  // namespace util

#endif  // UTIL_PROC_H_
