"""Who may reach the lock engine's internals (issue 12).

The lock's own packages, and the tools and test suites that drive the engine
below the public API. Everything else depends on the public //lock.
"""

ENGINE_USERS = [
    "//lock:__subpackages__",
    "//integration/checker:__pkg__",
    "//integration/fuzz:__pkg__",
    "//integration/hostile:__pkg__",
    "//tools/bench:__pkg__",
    "//tools/fence_keyspace:__pkg__",
    "//tools/lockctl:__pkg__",
]
