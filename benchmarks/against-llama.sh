#!/usr/bin/env bash
# Makes the README's side-by-side table against llama.cpp ("Against llama.cpp"): each synth file (made first if missing)
# at -p 64 -n 32 on 1 and 2 threads, then pp512, decode at depth 2048 and batched decode, ManagedLM and the peer
# alternating run by run. The peer is llama.cpp built beside the repository (README); nothing else needs it.
#   benchmarks/against-llama.sh [LLAMA_CPP_BIN_DIR] [REPETITIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-../llama.cpp/build/bin}
reps=${2:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet build tools/ManagedLM.Cli -c Release -o "$out" -v quiet -nologo >/dev/null
managedlm() { "$out/managedlm" "$@"; }
file() { local f="checkpoints/$1-$2.gguf"; [ -f "$f" ] || managedlm synth --preset "$1" --type "$2" >&2; echo "$f"; }

uptime
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
uptime
