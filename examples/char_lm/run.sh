#!/usr/bin/env bash
# Character-level language models from Debian's corpora, trained by `gradgraph lm train` and by the
# same models in PyTorch (char_lm.py next to this script) with the same settings and seeds: every
# model of nn/lm.hpp on the English word list (wamerican: a makemore-style word generator) and the
# GPT on the fortunes collection (prose). Prints a table of validation losses (mean ± standard
# deviation over the seeds) and samples; logs and models go into out/char_lm/.
#
#   bash examples/char_lm/run.sh [SEEDS] [MODELS]     # defaults: "1 2 3" and every model
#   GG=build/cli/gradgraph THREADS=1 bash examples/char_lm/run.sh "1 2" "gpt lstm"
# Needs the packages wamerican and fortunes (bash scripts/deps.sh wamerican fortunes), python3-torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=${1:-"1 2 3"}
models=${2:-"bigram mlp rnn lstm gru gpt"}
gg=${GG:-build/cli/gradgraph}
threads=${THREADS:-1}
out=out/char_lm
mkdir -p "$out"

# The fortune files (not their .dat indexes or .u8 links), one text of ~2.5 MB.
fortunes=$out/fortunes.txt
[ -s "$fortunes" ] || find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' \
  | sort | xargs cat > "$fortunes"

words=(--text /usr/share/dict/american-english --mode words --embedding 32 --hidden 64 --layers 2 --heads 4
       --batch-size 32 --steps 600 --warmup 60 --lr 0.01 --eval-every 200 --threads "$threads")
prose=(--text "$fortunes" --model gpt --context 64 --embedding 48 --layers 2 --heads 4 --batch-size 16
       --steps 600 --warmup 60 --lr 0.005 --eval-every 200 --threads "$threads")

last_val() { grep '^step' "$1" | tail -1 | sed 's/.*val loss \([0-9.]*\).*/\1/'; }
run() { # run NAME ARGS...: gradgraph and PyTorch, each seed
  local name=$1
  shift
  for seed in $seeds; do
    "$gg" lm train "$@" --seed "$seed" --progress lines --save "$out/$name-$seed.safetensors" \
      --log "$out/$name-$seed.jsonl" > "$out/$name-$seed.gg.txt"
    /usr/bin/python3 examples/char_lm/char_lm.py "$@" --seed "$seed" > "$out/$name-$seed.torch.txt"
    echo "$name seed $seed: gradgraph $(last_val "$out/$name-$seed.gg.txt"), PyTorch $(last_val "$out/$name-$seed.torch.txt")"
  done
}
stats() { # mean ± sd of the last validation losses of files
  for f in "$@"; do last_val "$f"; done | awk '{s += $1; q += $1 * $1; n++} END {
    m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; printf "%.4f ± %.4f", m, sqrt(v > 0 ? v : 0)}'
}

for model in $models; do run "words-$model" "${words[@]}" --model "$model"; done
if [[ " $models " == *" gpt "* ]]; then run fortunes-gpt "${prose[@]}"; fi

echo
echo "| corpus | model | gradgraph val loss | PyTorch val loss |"
echo "| --- | --- | --- | --- |"
for model in $models; do
  echo "| words | $model | $(stats "$out"/words-"$model"-*.gg.txt) | $(stats "$out"/words-"$model"-*.torch.txt) |"
done
if [[ " $models " == *" gpt "* ]]; then
  echo "| fortunes | gpt | $(stats "$out"/fortunes-gpt-*.gg.txt) | $(stats "$out"/fortunes-gpt-*.torch.txt) |"
fi
first=$(echo "$seeds" | cut -d' ' -f1)
for model in $models; do
  echo
  echo "words-$model, 8 samples:"
  "$gg" lm sample --model "$out/words-$model-$first.safetensors" --count 8 --seed 1 | paste -sd' '
done
if [[ " $models " == *" gpt "* ]]; then
  echo
  echo "fortunes-gpt, 400 characters:"
  "$gg" lm sample --model "$out/fortunes-gpt-$first.safetensors" --length 400 --seed 1 --temperature 0.8
fi
