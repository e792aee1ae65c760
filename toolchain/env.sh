#!/usr/bin/env bash
# The real toolchain's environment (see toolchain/README.md).
#   source toolchain/env.sh     exports PATH, PULUMI_HOME, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION,
#                               PULUMI_SKIP_UPDATE_CHECK into the current shell
#   toolchain/env.sh            prints the export lines (eval "$(toolchain/env.sh)")
# It does not build: run `make toolchain` first (`toolchain/build.py --check` tells if it is built).
_meshca_tc_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  eval "$(python3 "$_meshca_tc_dir/build.py" --env)"
  unset _meshca_tc_dir
else
  exec python3 "$_meshca_tc_dir/build.py" --env
fi
