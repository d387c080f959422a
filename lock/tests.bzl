"""The engine's integration tests: GoogleTest suites against real redis-servers."""

load("//tools/bazel:redis_test.bzl", "redis_cc_test")

def engine_test(name, size = "medium", deps = [], container = False, **kwargs):
    """A cc_test NAME.cc over //lock:engine and the harness fixtures.

    Args:
      name: the test; its source is NAME.cc.
      size: Bazel test size.
      deps: what it needs beyond the engine, the fixtures and gtest.
      container: also declare NAME_container_test, every redis-server in a
        container (redis_cc_test).
      **kwargs: passed to cc_test.
    """
    if container:
        redis_cc_test(
            name = name,
            size = size,
            container_size = "large",
            srcs = [name + ".cc"],
            deps = _ENGINE_TEST_DEPS + deps,
            **kwargs
        )
        return
    native.cc_test(
        name = name,
        size = size,
        srcs = [name + ".cc"],
        tags = ["integration"],
        deps = _ENGINE_TEST_DEPS + deps,
        **kwargs
    )

_ENGINE_TEST_DEPS = [
    ":engine",
    ":locker_from_json",
    "//integration/harness:redis_test",
    "//policy",
    "//util:status_matchers",
    "@absl",
    "@gtest//:gtest_main",
]
