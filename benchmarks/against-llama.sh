#!/usr/bin/env bash
# Makes the README's side-by-side tables against llama.cpp ("Against llama.cpp"): each synth file (made first if missing)
# at -p 64 -n 32 on 1 and 2 threads, then pp512, decode at depth 2048 and batched decode, ManagedLM and the peer
# alternating run by run. The peer is llama.cpp built beside the repository (README); nothing else needs it.
#   benchmarks/against-llama.sh [--families | --all] [LLAMA_CPP_BIN_DIR] [REPETITIONS]
# --families: only the other families' presets (gemma-2-2b, gemma-3-1b, phi-3.5-mini, qwen3-moe-small, granite-3-2b;
#   Q4_K_M, -p 64 -n 32 on 1 and 2 threads); --all: the llama table, then those.
# SYNTH_DIR=DIR keeps the synth files there instead of checkpoints/ (they take GBs); MANAGEDLM=PATH runs that managedlm
# instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
llama=1 families=0
case "${1:-}" in
    --families) llama=0 families=1; shift ;;
    --all) families=1; shift ;;
esac
bin=${1:-../llama.cpp/build/bin}
reps=${2:-3}
dir=${SYNTH_DIR:-checkpoints}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ -n "${MANAGEDLM:-}" ]; then
    managedlm() { "$MANAGEDLM" "$@"; }
else
    dotnet build tools/ManagedLM.Cli -c Release -o "$out" -v quiet -nologo >/dev/null
    managedlm() { "$out/managedlm" "$@"; }
fi
file() { local f="$dir/$1-$2.gguf"; [ -f "$f" ] || managedlm synth --preset "$1" --type "$2" -o "$f" >&2; echo "$f"; }

uptime
if [ "$llama" = 1 ]; then
    for spec in "stories110m Q4_0" "stories110m Q8_0" "tinyllama-1.1b Q4_K_M" "tinyllama-1.1b Q4_0" "qwen2.5-0.5b Q4_K_M"; do
        set -- $spec
        managedlm bench -m "$(file "$1" "$2")" -p 64 -n 32 -t 1,2 -r "$reps" --peer "$bin/llama-bench"
    done
    for spec in "stories110m Q4_0" "tinyllama-1.1b Q4_K_M"; do
        set -- $spec
        managedlm bench -m "$(file "$1" "$2")" -p 512 -n 0 -t 1,2 -r 2 --peer "$bin/llama-bench"
    done
    managedlm bench -m "$(file tinyllama-1.1b Q4_K_M)" -p 0 -n 32 -d 2048 -t 1,2 -r 2 --peer "$bin/llama-bench"
    for spec in "stories110m Q4_0" "tinyllama-1.1b Q4_K_M" "qwen2.5-0.5b Q4_K_M"; do
        set -- $spec
        managedlm bench -m "$(file "$1" "$2")" --batch 1,8 -p 32 -n 64 -t 2 -r 2 --peer "$bin/llama-batched-bench"
    done
fi
if [ "$families" = 1 ]; then
    for preset in gemma-2-2b gemma-3-1b phi-3.5-mini qwen3-moe-small granite-3-2b; do
        managedlm bench -m "$(file "$preset" Q4_K_M)" -p 64 -n 32 -t 1,2 -r "$reps" --peer "$bin/llama-bench"
    done
fi
uptime
