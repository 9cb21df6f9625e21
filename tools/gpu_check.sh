#!/usr/bin/env bash
# One GPU, end to end: train-step speed and MFU of the text LMs (~100M to ~1B, bfloat16,
# cuDNN and XLA attention, scan + remat), KV-cache decode speed against the memory-bandwidth
# bound, the largest DiT preset, and a two-size sweep of the main job through `scaling plot`.
#
#   pip install -e '.[cuda]' && tools/gpu_check.sh          # about 7 minutes on one H100
#   tools/gpu_check.sh --dry-run                            # every part, tiny, on CPU (~2 min)
#
# Options: --out DIR (default $OUT if set, else gpu_check_out), --work DIR (per-part JSONs,
# logs and the sweep; default the output folder, or ${TMPDIR:-/tmp}/gpu_check_work when the
# output folder is $OUT, which keeps $OUT to four files), --budget SECONDS (default 420, dry
# run 300: parts that would start later are skipped, the most telling ones run first),
# PYTHON=... to choose the interpreter (default python3). Each part runs under `timeout`;
# one that fails does not stop the others. The output folder gets summary.txt (the table
# printed at the end), results.json (every part's numbers), gpu_check.log and
# gpu_check.tar.gz (the JSONs, the logs and the sweep's results without checkpoints).
# Exit code 0 when every part passed, 1 when one failed, 3 when something is missing.
set -uo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=0 OUTDIR="" WORK="" BUDGET=""
while (($#)); do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUTDIR="${2:?--out needs a folder}"; shift ;;
    --out=*) OUTDIR="${1#*=}" ;;
    --work) WORK="${2:?--work needs a folder}"; shift ;;
    --work=*) WORK="${1#*=}" ;;
    --budget) BUDGET="${2:?--budget needs seconds}"; shift ;;
    --budget=*) BUDGET="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (see --help)"; exit 2 ;;
  esac
  shift
done
if [[ -z $OUTDIR ]]; then
  if [[ -n ${OUT:-} ]]; then  # a machine that returns only a few files from $OUT
    OUTDIR=$OUT; WORK=${WORK:-${TMPDIR:-/tmp}/gpu_check_work}
  else
    OUTDIR=gpu_check_out
  fi
fi
WORK=${WORK:-$OUTDIR}
[[ $BUDGET =~ ^[0-9]+$ ]] || BUDGET=$((DRY ? 300 : 420))
command -v timeout >/dev/null || { echo "gpu_check: needs coreutils' timeout"; exit 3; }
mkdir -p "$OUTDIR" "$WORK" || exit 3
OUTDIR="$(cd "$OUTDIR" && pwd)" WORK="$(cd "$WORK" && pwd)"
rm -rf "$WORK/json" "$WORK/logs" "$WORK/sweep" "$WORK/parts.jsonl"
mkdir -p "$WORK/json" "$WORK/logs"
cd "$REPO" || exit 3
exec > >(tee "$OUTDIR/gpu_check.log") 2>&1
TEE_PID=$!

PYTHON=${PYTHON:-python3}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
SCALING=("$PYTHON" -m scaling.cli)
HELPER=("$PYTHON" "$REPO/tools/gpu_check.py")
if ((DRY)); then
  export JAX_PLATFORMS=cpu
  # Tiny models compile far longer than they run: XLA's cheaper CPU compile (numerics
  # unchanged), when this jaxlib knows the flags.
  export XLA_FLAGS="${XLA_FLAGS:-} $("${HELPER[@]}" dry-xla-flags)"
else
  export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}  # one GPU, also on a larger host
fi
DEADLINE=$((SECONDS + BUDGET))
MIN_LEFT=$((DRY ? 15 : 40))  # a part with less time left than this is skipped

record() {  # part status rc seconds limit json log why
  printf '{"part": "%s", "status": "%s", "rc": %d, "seconds": %d, "limit": %d, "json": "%s", "log": "%s", "why": "%s"}\n' \
    "$@" >>"$WORK/parts.jsonl"
}

# run_part NAME LIMIT JSON POST -- COMMAND...: runs COMMAND under `timeout` (at most LIMIT
# seconds and what is left of the budget), logs it to logs/NAME.log, then runs the shell
# function POST (or - for none) if it passed; the part passes when both did and JSON
# (or - for none) was written.
run_part() {
  local name=$1 limit=$2 json=$3 post=$4 left=$((DEADLINE - SECONDS)) start=$SECONDS rc status
  local log="$WORK/logs/$name.log"
  shift 5
  if ((left < MIN_LEFT)); then
    echo "== $name: skipped, $left s of the budget left"
    record "$name" skipped 0 0 0 "$json" "$log" "budget: $left s left"
    return 1
  fi
  ((limit > left)) && limit=$left
  echo "== $name (at most $limit s): ${*#$REPO/}"
  # SIGINT first: a sweep passes it on to its trials (which run in their own sessions).
  if [[ $name == sweep* ]]; then
    timeout -s INT -k 60 "$limit" "$@" >"$log" 2>&1
    rc=$?
    tr '\r' '\n' <"$log" | grep -v -E -e '^sweep: +[0-9]+%' -e '^\s*$' | tail -n 30
  else
    timeout -k 30 "$limit" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
  fi
  if ((rc == 0)) && [[ $post != - ]]; then
    "$post" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
  fi
  if ((rc == 0)) && [[ $json != - && ! -s $json ]]; then
    echo "gpu_check: $name wrote no $json" | tee -a "$log"
    rc=1
  fi
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status=failed ;;
  esac
  echo "== $name: $status (exit $rc) after $((SECONDS - start)) s"
  record "$name" "$status" "$rc" $((SECONDS - start)) "$limit" "$json" "$log" ""
  [[ $status == ok ]]
}

# --- the parts ------------------------------------------------------------------------
declare -A LM_BATCH
if ((DRY)); then
  STEPS=(--steps 2 --warmup 1)
  LM=(tiny) ATTENTIONS=(xla) DTYPE=float32 DECODE_SIZE=tiny
  LM_BATCH=([tiny]=8)
  LM_CONFIG() { echo "configs/lm/text.py:size=$1"; }
  DECODE=(--prompt_len 16 --new_tokens 16)
  DIT=(configs/diffusion/digits.py:size=d0 --config.train.batch_size=32)
  LIMIT_TRAIN=120 LIMIT_DECODE=120 LIMIT_DIT=120 LIMIT_SWEEP=150
  SWEEP=("--config.sizes=('s0','s2')" "--config.seeds=(0,)" --config.eval.n=10
         "--config.eval.suites=arithmetic,analogy"
         "--config.overrides=('data.num_train=2000','data.num_eval=100','data.pack=True','train.batch_size=32','train.steps=10','train.warmup_steps=2','eval.every_steps=0','checkpoint.every_steps=0')")
else
  # Global batches are the presets' per-host ones cut to fit one 80 GB GPU (with remat):
  # 32 x 1024 tokens, 16 x 1024 at 1b.
  STEPS=(--steps 10 --warmup 2)
  LM=(1b 300m 100m) ATTENTIONS=(cudnn xla) DTYPE=bfloat16 DECODE_SIZE=1b
  LM_BATCH=([1b]=16 [300m]=32 [100m]=32)
  LM_CONFIG() { echo "configs/lm/text.py:size=$1,corpus=c4,mesh=gpu1"; }
  DECODE=(--prompt_len 64 --new_tokens 64)
  # d5 makes 16 tokens of an 8x8 image: a batch of 2048 gives the GPU 32k tokens a step.
  DIT=(configs/diffusion/digits.py:size=d5 --config.train.batch_size=2048
       --config.model.dtype=bfloat16 --config.model.attention=cudnn)
  LIMIT_TRAIN=240 LIMIT_DECODE=180 LIMIT_DIT=150 LIMIT_SWEEP=300
  # The main job's kind and data (configs/sweeps/arithmetic_cpu.py: 1180 steps of 84 rows,
  # arithmetic + analogy evals), two sizes either side of where addition appears.
  SWEEP=("--config.sizes=('s2','s5')" "--config.seeds=(0,)" --config.max_parallel=1)
fi

train_lm() {  # SIZE ATTENTION
  local json="$WORK/json/train-lm-$1-$2.json"
  run_part "train-lm-$1-$2" "$LIMIT_TRAIN" "$json" - -- \
    "${SCALING[@]}" bench train --config="$(LM_CONFIG "$1")" "${STEPS[@]}" --json "$json" \
    --config.model.dtype=$DTYPE --config.model.attention="$2" \
    --config.model.scan_layers=True --config.model.remat=dots_saveable \
    --config.train.batch_size="${LM_BATCH[$1]}"
}

DECODE_ARGS=()
decode_post() {
  "${HELPER[@]}" decode-bandwidth --json "$DECODE_JSON" --device "$WORK/json/device.json" \
    --config="$(LM_CONFIG "$DECODE_SIZE")" "${DECODE_ARGS[@]}"
}
decode() {  # BATCH [ATTENTION]: the preset's attention (cuDNN on GPUs), XLA if that fails
  local attention=${2:-$( ((DRY)) && echo xla || echo cudnn)}
  DECODE_JSON="$WORK/json/decode-lm-$DECODE_SIZE-$attention-b$1.json"
  DECODE_ARGS=(--config.model.dtype=$DTYPE --config.model.attention="$attention")
  run_part "decode-lm-$DECODE_SIZE-$attention-b$1" "$LIMIT_DECODE" "$DECODE_JSON" decode_post -- \
    "${SCALING[@]}" bench decode --config="$(LM_CONFIG "$DECODE_SIZE")" --batch "$1" \
    "${DECODE[@]}" --json "$DECODE_JSON" "${DECODE_ARGS[@]}" \
    || { [[ $attention == cudnn ]] && decode "$1" xla; }
}

sweep_post() {
  "${HELPER[@]}" sweep-summary --dir "$WORK/sweep" --json "$WORK/json/sweep.json"
}
sweep() {
  run_part sweep-arithmetic "$LIMIT_SWEEP" "$WORK/json/sweep.json" sweep_post -- \
    "${SCALING[@]}" sweep run --config=configs/sweeps/arithmetic_cpu.py --dir "$WORK/sweep" \
    "${SWEEP[@]}"
  local rc=$?
  # Trials run in their own sessions: end any that outlived a stopped sweep (by their id).
  "${HELPER[@]}" reap "$WORK/sweep"
  return $rc
}

dit() {
  run_part train-dit "$LIMIT_DIT" "$WORK/json/train-dit.json" - -- \
    "${SCALING[@]}" bench train --config="${DIT[0]}" "${DIT[@]:1}" "${STEPS[@]}" \
    --json "$WORK/json/train-dit.json"
  local video
  for video in configs/diffusion/video*.py; do
    [[ -e $video ]] || { echo "== train-video: no video preset (configs/diffusion/video*.py)"; break; }
    local extra=()
    ((DRY)) || extra=(--config.model.dtype=bfloat16 --config.model.attention=cudnn)
    run_part "train-video-$(basename "$video" .py)" "$LIMIT_DIT" \
      "$WORK/json/train-video-$(basename "$video" .py).json" - -- \
      "${SCALING[@]}" bench train --config="$video" "${STEPS[@]}" "${extra[@]}" \
      --json "$WORK/json/train-video-$(basename "$video" .py).json"
  done
}

# --- run ------------------------------------------------------------------------------
echo "gpu_check: $( ((DRY)) && echo "dry run on CPU" || echo "one GPU" ), budget $BUDGET s," \
     "output $OUTDIR, work $WORK"
if ! run_part preflight 180 "$WORK/json/device.json" - -- \
     "${HELPER[@]}" preflight $( ((DRY)) && echo --dry-run ) --json "$WORK/json/device.json"; then
  grep -h '^gpu_check: ' "$WORK/logs/preflight.log" | tail -n 1
  exec 1>&- 2>&-; wait "$TEE_PID"
  exit 3
fi

# Most telling first: the budget skips what is left at the end (the XLA-attention rows
# first; the attention part compares the two at the 1b shapes anyway).
train_lm "${LM[0]}" "${ATTENTIONS[0]}"
decode 1
decode 64
# cuDNN against XLA on the attention shapes above: causal (what bench train times), with
# packed rows' document mask (what training on text runs), one decode step; same numbers?
run_part attention 120 "$WORK/json/attention.json" - -- \
  "${HELPER[@]}" attention --json "$WORK/json/attention.json"
sweep
dit
for size in "${LM[@]:1}"; do  # the rest of the ladder with the preset's attention
  train_lm "$size" "${ATTENTIONS[0]}"
done
for attention in "${ATTENTIONS[@]:1}"; do  # and with XLA's beside it
  for size in "${LM[@]}"; do
    train_lm "$size" "$attention"
  done
done

echo
"${HELPER[@]}" summary --work "$WORK" --out "$OUTDIR"
rc=$?
tar -czf "$OUTDIR/gpu_check.tar.gz" -C "$WORK" --exclude=checkpoints --exclude=tensorboard \
  --exclude=cache --exclude='*.svg' --exclude='tokenizer.model' json logs parts.jsonl \
  $([[ -d $WORK/sweep ]] && echo sweep) 2>/dev/null
echo "wrote $OUTDIR/summary.txt, results.json, gpu_check.log, gpu_check.tar.gz" \
     "(work: $WORK) in $SECONDS s"
exec 1>&- 2>&-
wait "$TEE_PID"
exit $rc
