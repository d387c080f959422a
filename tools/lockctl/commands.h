// The lockctl commands. Each takes the arguments after its name and returns
// the process exit code (see ExitCode in cli.h).
#ifndef TOOLS_LOCKCTL_COMMANDS_H_
#define TOOLS_LOCKCTL_COMMANDS_H_

#include <string>
#include <vector>

namespace lockctl {

int Validate(const std::vector<std::string>& argv);
int Explain(const std::vector<std::string>& argv);
int Status(const std::vector<std::string>& argv);
int List(const std::vector<std::string>& argv);
int Release(const std::vector<std::string>& argv);
int Stats(const std::vector<std::string>& argv);
int Bench(const std::vector<std::string>& argv);
int Watch(const std::vector<std::string>& argv);

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_COMMANDS_H_
