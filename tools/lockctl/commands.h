// The lockctl commands: what each is called, takes and says in --help, and
// the function that runs it (see Command in cli.h). A run returns the
// process exit code (see ExitCode in cli.h).
#ifndef TOOLS_LOCKCTL_COMMANDS_H_
#define TOOLS_LOCKCTL_COMMANDS_H_

#include "tools/lockctl/cli.h"

namespace lockctl {

Command ValidateCommand();
Command ExplainCommand();
Command StatusCommand();
Command ListCommand();
Command ReleaseCommand();
Command StatsCommand();
Command BenchCommand();
Command WatchCommand();

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_COMMANDS_H_
