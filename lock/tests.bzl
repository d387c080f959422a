"""The engine's integration tests: GoogleTest suites against real redis-servers."""

def engine_test(name, size = "medium", deps = [], **kwargs):
    """A cc_test NAME.cc over //lock:engine and the harness fixtures.

    Args:
      name: the test; its source is NAME.cc.
      size: Bazel test size.
      deps: what it needs beyond the engine, the fixtures and gtest.
      **kwargs: passed to cc_test.
    """
    native.cc_test(
        name = name,
        size = size,
        srcs = [name + ".cc"],
        tags = ["integration"],
        deps = [
            ":engine",
            ":locker_from_json",
            "//integration/harness:redis_test",
            "//policy",
            "//util:status_matchers",
            "@absl",
            "@gtest//:gtest_main",
        ] + deps,
        **kwargs
    )
