"""The external repositories that @redis_lock builds with, all local.

This workspace's WORKSPACE calls redis_lock_deps(), and so does a workspace
that depends on the library:

    local_repository(name = "redis_lock", path = "/path/to/redis-lock")
    load("@redis_lock//tools/bazel:deps.bzl", "redis_lock_deps")
    redis_lock_deps()

then `deps = ["@redis_lock//lock"]` (integration/consumers/bazel is one).
The C++ libraries are Debian's (tools/setup installs them); Bazel 4.2.3's
rules_cc, rules_java and remote_coverage_tools are the in-tree shims of
tools/bazel/offline, so nothing is downloaded. A repository declared before
the call is kept (the consumer's own @absl, say).
"""

load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")

def _in_tree_repository_impl(rctx):
    # The directory of `marker`, wherever the repository holding it lies (this
    # workspace or a consumer's copy of @redis_lock), linked in entry by entry.
    directory = rctx.path(rctx.attr.marker).dirname
    for entry in directory.readdir():
        rctx.symlink(entry, entry.basename)

# local_repository for a directory of this repository: a path would be
# relative to the workspace that calls redis_lock_deps(), a label is not.
_in_tree_repository = repository_rule(
    implementation = _in_tree_repository_impl,
    attrs = {"marker": attr.label(allow_single_file = True, mandatory = True)},
    local = True,
)

# Where Debian 12 (amd64) puts each system library, and its BUILD file.
_SYSTEM_LIBRARIES = {
    "absl": "/usr/lib/x86_64-linux-gnu",
    "asio": "/usr/include",
    "benchmark": "/usr/lib/x86_64-linux-gnu",
    "gtest": "/usr/lib/x86_64-linux-gnu",
    "hiredis": "/usr/lib/x86_64-linux-gnu",
    "nlohmann_json": "/usr/include",
    "openssl": "/usr/lib/x86_64-linux-gnu",
    "prometheus_cpp": "/usr/lib/x86_64-linux-gnu",
}

def redis_lock_deps():
    """Declares every repository @redis_lock needs that is not yet declared."""
    for name in ["rules_cc", "rules_java", "remote_coverage_tools"]:
        maybe(
            _in_tree_repository,
            name = name,
            marker = Label("//tools/bazel/offline/%s:WORKSPACE" % name),
        )
    for name, path in _SYSTEM_LIBRARIES.items():
        maybe(
            native.new_local_repository,
            name = name,
            build_file = str(Label("//tools/bazel/system:%s.BUILD" % name)),
            path = path,
        )
