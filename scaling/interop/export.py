"""`scaling export`: a language-model run as a Hugging Face model folder.

The folder holds `model.safetensors`, `config.json`, `generation_config.json`, the
tokenizer (`tokenizer.json`, loaded by `AutoTokenizer`) and `scaling_export.json` (the run
and step it came from). With every kept checkpoint, one folder per step (`step<N>`), as
Pythia publishes its revisions. Everything is checked before anything is written, and a
folder appears whole or not at all.
"""

from __future__ import annotations

import os
import shutil

from scaling import config as config_lib
from scaling import files
from scaling.errors import UserError
from scaling.interop import lm_eval_tasks
from scaling.rundir import RunDir

HF_EXTRA = "pip install -e '.[hf]'"
TASKS = "lm_eval_tasks"


def _require_transformers() -> None:
  try:
    import safetensors  # noqa: F401
    import tokenizers  # noqa: F401
    import transformers  # noqa: F401
  except ImportError as e:
    raise UserError(f"scaling export needs transformers, tokenizers and safetensors "
                    f"({HF_EXTRA}): {e}") from None


def _kept_steps(workdir: str, cfg) -> list[int]:
  from scaling.train.checkpoint import Checkpointer
  directory = RunDir(workdir).checkpoints
  if not os.path.isdir(directory):
    raise UserError(f"{workdir} has no checkpoint to export")
  with Checkpointer(directory, cfg.checkpoint, read_only=True) as checkpointer:
    steps = checkpointer.all_steps()
  if not steps:
    raise UserError(f"{workdir} has no checkpoint to export")
  return steps


def check(workdir: str, out: str, step: int | None = None) -> list[int]:
  """Every reason the export cannot be made, as one `UserError`; returns the kept steps."""
  from scaling import runs
  from scaling.interop import hf_model
  cfg = runs.load_config(workdir)
  if cfg.model.kind != "lm":
    raise UserError(f"scaling export writes language models; {workdir} is a "
                    f"{cfg.model.kind!r} run")
  why = hf_model.refusal(cfg.model)
  if why:
    raise UserError(f"cannot export {workdir}: {why}")
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise UserError(f"{out} exists and is not an empty folder; choose a new one")
  _require_transformers()
  steps = _kept_steps(workdir, cfg)
  if step is not None and step not in steps:
    raise UserError(f"{workdir} has no checkpoint at step {step} (it has "
                    f"{', '.join(map(str, steps))})")
  files.check_writable(os.path.dirname(os.path.abspath(out)), "export folder")
  return steps


def write_folder(run, out: str, fast_tokenizer=None) -> None:
  """Writes `run` (a loaded `scaling.runs.Run` of a language model) to the folder `out`;
  `fast_tokenizer`, its tokenizer converted, when the caller already has it."""
  from safetensors.numpy import save_file
  from transformers import GenerationConfig
  from scaling.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
  from scaling.interop import hf_model, hf_tokenizer
  os.makedirs(out, exist_ok=True)
  hf_model.hf_config(run.cfg, run.model.vocab_size).save_pretrained(out)
  weights = os.path.join(out, "model.safetensors")
  save_file(hf_model.hf_tensors(run.model, run.cfg.model), weights, metadata={"format": "pt"})
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(weights, 0o666 & ~umask)  # safetensors writes it private
  GenerationConfig(bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
                   do_sample=False).save_pretrained(out)
  (fast_tokenizer or hf_tokenizer.fast_tokenizer(run.tokenizer)).save_pretrained(out)
  # The SentencePiece model itself and the run's config, for `scaling import`.
  run.tokenizer.save(os.path.join(out, "tokenizer.model"))
  config_lib.save(run.cfg, os.path.join(out, "scaling_config.json"))
  files.write_json(os.path.join(out, "scaling_export.json"), {
      "workdir": os.path.abspath(run.workdir), "step": run.step, "name": run.cfg.name,
      "architecture": hf_model.ARCHITECTURES[run.cfg.model.mlp],
      "folded": {"query_scale": run.cfg.model.parametrization == "mup",
                 "readout_multiplier": run.cfg.model.parametrization == "mup"}})


def export(workdir: str, out: str, *, step: int | None = None, all_checkpoints: bool = False,
           suite_names: tuple[str, ...] = ("arithmetic", "analogy"), n: int = 500) -> list[str]:
  """Writes the newest checkpoint (or `step`, or every kept one) as HF model folders, and
  the suites' items as lm-evaluation-harness tasks in OUT/lm_eval_tasks; returns the model
  folders."""
  from scaling import runs
  from scaling.interop import hf_tokenizer
  if all_checkpoints and step is not None:
    raise UserError("give --step or --all_checkpoints, not both")
  steps = check(workdir, out, step)
  chosen = steps if all_checkpoints else [step if step is not None else steps[-1]]
  parent = os.path.dirname(os.path.abspath(out))
  os.makedirs(parent, exist_ok=True)
  staging = os.path.join(parent, f".{os.path.basename(out)}.partial-{os.getpid()}")
  shutil.rmtree(staging, ignore_errors=True)
  try:
    fast = None  # every checkpoint of a run shares its tokenizer: converted once
    for s in chosen:
      run = runs.load(workdir, step=s)
      fast = fast or hf_tokenizer.fast_tokenizer(run.tokenizer)
      write_folder(run, os.path.join(staging, f"step{s}") if all_checkpoints else staging,
                   fast)
    if suite_names:
      lm_eval_tasks.write(run.cfg.data, os.path.join(staging, TASKS), suite_names=suite_names,
                          n=n, tokenizer=run.tokenizer, final=os.path.join(out, TASKS))
    if os.path.isdir(out):
      os.rmdir(out)  # empty, as checked
    os.rename(staging, out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return [os.path.join(out, f"step{s}") for s in chosen] if all_checkpoints else [out]
