#!/bin/sh
# Installs agentwire from the build folder into a fresh prefix and builds
# examples/embedded against that installed package, out of tree, as a user
# of the package would; then compiles the public headers alone.
#   build_example.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -eu
build=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
cmake -S "$src/examples/embedded" -B "$work/example" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log"
cmake --build "$work/example" -j 2
test -x "$work/example/quote_desk"
# The installed headers alone, as an application includes them.
${CXX:-c++} -std=c++17 -fsyntax-only -I"$work/prefix/include" -I"$work/prefix/include/agentwire" \
  "$src/tests/embedded/public_headers_check.cpp"
