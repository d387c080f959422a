"""An example program under examples/, declared the one way all of them are.

    load("//tools/bazel:example.bzl", "example")

    example(name = "inventory")

in examples/inventory/BUILD declares
  - `inventory`: main.cc, built on examples/common and the library's public
    headers, with policies.json beside it;
  - `configs`: its *.json files, validated against policy/schema.json by
    //policy:schema_test;
  - `inventory_test`: inventory_test.sh, which runs it in its short mode
    against an embedded redis-server (tagged "integration").
"""

def example(name, deps = []):
    """An example program, its policy files and its test.

    Args:
      name: the program's name, and its directory's.
      deps: more dependencies of main.cc.
    """
    native.cc_binary(
        name = name,
        srcs = ["main.cc"] + native.glob(["*.h"]),
        data = ["policies.json"],
        visibility = ["//visibility:public"],
        deps = [
            "//examples/common:demo",
            "//examples/common:redis_data",
            "//lock",
            "//policy",
            "//tools/lockctl:stats_dump",
            "//util:flags",
            "@absl",
            "@nlohmann_json//:json",
        ] + deps,
    )
    native.filegroup(
        name = "configs",
        srcs = native.glob(["*.json"]),
        visibility = ["//policy:__pkg__"],
    )
    native.sh_test(
        name = name + "_test",
        size = "medium",
        srcs = [name + "_test.sh"],
        data = [":" + name],
        tags = ["integration"],
    )
