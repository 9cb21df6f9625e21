#!/usr/bin/env bash
# Exports every run of a sweep as a Hugging Face model, scores each with lm-evaluation-
# harness on the toolkit's suites, and prints its exact match beside `scaling eval`'s
# (the sweep's eval.json) per run and task.
#
#   bash tools/lm_eval_ladder.sh sweeps/arithmetic_cpu hf-ladder
set -euo pipefail
sweep=${1:?usage: lm_eval_ladder.sh SWEEP_DIR OUT_DIR}
out=${2:?usage: lm_eval_ladder.sh SWEEP_DIR OUT_DIR}
PYTHON=${PYTHON:-python}
export HF_DATASETS_OFFLINE=1
for run in "$sweep"/runs/*/; do
  name=$(basename "$run")
  # The items `scaling eval` scored: its -n and the suites lm-eval-tasks can write.
  read -r n suites < <("$PYTHON" -c "import json,sys; e = json.load(open(sys.argv[1])); \
print(e['n_per_subset'], ','.join(s for s in e['suites'] if s in ('arithmetic', 'analogy')))" \
      "$run/eval.json")
  [ -d "$out/$name" ] || scaling export --workdir="$run" "$out/$name" -n "$n" \
      --suite="$suites" > /dev/null
  tasks=$(cd "$out/$name/lm_eval_tasks" && ls *.yaml | sed 's/\.yaml$//' | paste -sd, -)
  lm_eval --model hf --model_args "pretrained=$out/$name,add_bos_token=True,dtype=float32" \
      --include_path "$out/$name/lm_eval_tasks" --tasks "$tasks" --batch_size 1 \
      --device cpu --output_path "$out/$name/lm_eval" > "$out/$name/lm_eval.log" 2>&1
done
"$PYTHON" - "$sweep" "$out" <<'PY'
import glob, json, os, sys
sweep, out = sys.argv[1:]
print(f"{'run':28} {'task':16} {'n':>5} {'scaling eval':>12} {'lm_eval':>8}")
for run in sorted(glob.glob(os.path.join(sweep, "runs", "*", ""))):
  name = os.path.basename(os.path.dirname(run))
  ours = json.load(open(os.path.join(run, "eval.json")))["tasks"]
  [path] = sorted(glob.glob(os.path.join(out, name, "lm_eval", "**", "results_*.json"),
                            recursive=True))[-1:]
  theirs = json.load(open(path))["results"]
  for task, result in sorted(theirs.items()):
    row = ours[task.removeprefix("scaling_")]["all"]
    print(f"{name:28} {task.removeprefix('scaling_'):16} {row['n']:>5} "
          f"{row['metrics']['exact_match']['mean']:>12.3f} {result['exact_match,none']:>8.3f}")
PY
