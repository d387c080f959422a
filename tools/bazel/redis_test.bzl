"""Integration suites that run against real redis-server nodes, declared once
for both of the harness's backends (integration/harness/redis_server.h).

    load("//tools/bazel:redis_test.bzl", "redis_cc_test")

    redis_cc_test(
        name = "redis_lock_test",
        size = "medium",
        container_size = "large",
        srcs = ["redis_lock_test.cc"],
        deps = [...],
    )

declares `redis_lock_test` (every node a child process) and its twin
`redis_lock_container_test`: the same sources and deps with
LOCK_TEST_BACKEND=container, so that every node runs in a podman (or docker)
container. Both are tagged "integration".
"""

def redis_cc_test(
        name,
        size,
        container_size = None,
        container_name = None,
        args = [],
        container_args = None,
        shard_count = None,
        tags = [],
        **kwargs):
    """A cc_test against real Redis nodes, and its container twin.

    Args:
      name: the process-backend test; ends in "_test".
      size: its size.
      container_size: the twin's size (containers start slower); default `size`.
      container_name: the twin's name; default `name` with "_test" turned
        into "_container_test".
      args: the process test's arguments.
      container_args: the twin's arguments (a --gtest_filter for the suites
        worth running in containers too); default `args`.
      shard_count: the process test's shards; the twin runs unsharded.
      tags: added to "integration" on both (and "container" on the twin).
      **kwargs: srcs, deps, data... for both.
    """
    if container_name == None:
        if not name.endswith("_test"):
            fail("redis_cc_test: %s does not end in _test; name its twin with container_name" % name)
        container_name = name[:-len("_test")] + "_container_test"
    native.cc_test(
        name = name,
        size = size,
        args = args,
        shard_count = shard_count,
        tags = ["integration"] + tags,
        **kwargs
    )
    native.cc_test(
        name = container_name,
        size = container_size or size,
        args = args if container_args == None else container_args,
        env = {"LOCK_TEST_BACKEND": "container"},
        # "container": tools/test leaves the twins out of its TSan step,
        # whose subject is the library's code, which the process twin runs
        # alike; its ASan step runs them.
        tags = ["integration", "container"] + tags,
        **kwargs
    )
