#!/bin/sh
# Builds the addon and grove-shim incrementally: `node-gyp rebuild` would
# delete build/ first, breaking every process (tests, agents, benchmarks)
# that loads the addon or runs the shim meanwhile on this shared machine.
set -eu
cd "$(dirname "$0")"
if [ ! -f build/Makefile ] || [ ! -f build/config.gypi ] || [ binding.gyp -nt build/Makefile ]; then
  node-gyp configure
fi
node-gyp build
