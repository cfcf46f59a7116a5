#!/usr/bin/env bash
# Exact instructions per unit of a harness: runs it under valgrind (cachegrind, no cache
# simulation) once with N units and once with 2N, and prints the difference divided by N, so
# start-up and imports cancel out. Needs valgrind (apt-get install -y valgrind).
#
#   bash benchmarks/harness/count.sh per_message.py 20000
#   bash benchmarks/harness/count.sh per_handshake.py 500
set -euo pipefail
cd "$(dirname "$0")"
script=$1
units=$2
python=$(python3 -c "import sys; print(sys.executable)")
count() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$python" "$script" "$1" 1 2>&1 >/dev/null | awk '/I +refs/ {gsub(",", "", $NF); print $NF}'
}
once=$(count "$units")
twice=$(count $((2 * units)))
python3 -c "print(f'{($twice - $once) / $units:,.0f} instructions per unit ($script)')"
