// Runs the lockctl binary as a subprocess, for its end-to-end tests:
//
//   CliRun r = Lockctl({"status", "orders", "k", "--config", path});
//   ASSERT_EQ(r.code, 0) << r;   // prints exit code, stdout and stderr
#ifndef TOOLS_LOCKCTL_LOCKCTL_RUN_H_
#define TOOLS_LOCKCTL_LOCKCTL_RUN_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

extern char** environ;

namespace lockctl {

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string TmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

// Runs lockctl with `args`, stdin from /dev/null, extra environment `env`.
inline CliRun Lockctl(const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {}) {
  static int n = 0;
  const std::string out_path = absl::StrCat(TmpDir(), "/lockctl.", ++n, ".out");
  const std::string err_path = absl::StrCat(TmpDir(), "/lockctl.", n, ".err");
  std::vector<std::string> argv_s = {"tools/lockctl/lockctl"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string name = kv.substr(0, kv.find('='));
    if (name != "LOCK_CONFIG" && env.count(name) == 0) env_s.push_back(kv);
  }
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  CliRun r;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()) !=
      0) {
    ADD_FAILURE() << "cannot run " << argv[0];
    posix_spawn_file_actions_destroy(&actions);
    return r;
  }
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

inline std::ostream& operator<<(std::ostream& os, const CliRun& r) {
  return os << "exit " << r.code << "\n--- stdout\n"
            << r.out << "--- stderr\n"
            << r.err;
}

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_LOCKCTL_RUN_H_
