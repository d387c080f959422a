# Finds what redis_lock builds and links against, the same way for its own
# build (CMakeLists.txt: FIND is find_package, with REQUIRED) and for a
# project that finds the installed package (redis_lockConfig.cmake: FIND is
# find_dependency). On Debian 12: libabsl-dev, nlohmann-json3-dev,
# libssl-dev (OpenSSL 3: the TLS files of a policy configuration are checked
# when loading) and libhiredis-dev (through pkg-config, pkgconf).
macro(redis_lock_find_dependencies FIND)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  cmake_language(CALL ${FIND} Threads ${ARGN})
  cmake_language(CALL ${FIND} absl CONFIG ${ARGN})
  cmake_language(CALL ${FIND} nlohmann_json 3 CONFIG ${ARGN})
  cmake_language(CALL ${FIND} OpenSSL 3 ${ARGN})
  cmake_language(CALL ${FIND} PkgConfig ${ARGN})
  if(NOT TARGET PkgConfig::hiredis)
    pkg_check_modules(hiredis REQUIRED IMPORTED_TARGET hiredis)
  endif()
endmacro()
