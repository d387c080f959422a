#!/bin/sh
# The scenario_*_test targets are the only place CI runs the fault
# scenarios (tools/test runs tools/reliability without them): every
# scenario the driver knows must have its target. Arguments: the scenarios
# of the BUILD file.
set -eu
want=$(integration/checker/driver --list | tr ' ' '\n' | sed '/^$/d' | sort)
have=$(printf '%s\n' "$@" | sort)
if [ "$want" != "$have" ]; then
  echo "scenarios of the driver without a scenario_*_test target in integration/checker/BUILD:"
  printf '%s\n' "$want" | grep -vxF "$have" || true
  echo "targets in BUILD for scenarios the driver does not know:"
  printf '%s\n' "$have" | grep -vxF "$want" || true
  exit 1
fi
echo "all $(printf '%s\n' "$want" | wc -l) scenarios of the driver have a test target"
