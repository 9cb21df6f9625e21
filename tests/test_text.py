"""Text corpora and sequence packing: packed rows, segment attention, mixtures, training.

TFDS corpora are stood in for by `tfds.testing.mock_data` (no download); everything of
ours runs for real.
"""

import json
import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from scaling import exits
from scaling import config as config_lib
from scaling.errors import ConfigError
from scaling.data import builders, packing, pipeline
from scaling.data.tokenizer import BOS_ID, EOS_ID
from scaling.models import counting
from scaling.train import loop
from tests.helpers import tiny_config, make_lm as make_model
from scaling.families import validate
from tests.helpers import ROOT, summary

TEXT_CONFIG = os.path.join(ROOT, "configs", "lm", "text.py")
SMALL = ("data.num_train=256", "data.num_eval=32", "data.seq_len=64", "data.vocab_size=512")


def mocked_corpora():
  """Every TFDS dataset becomes 300 records of random text ('text': 10-20 chars)."""
  return tfds.testing.mock_data(num_examples=300, policy=tfds.testing.MockPolicy.USE_CODE)


def text_config(*overrides):
  cfg = config_lib.load(TEXT_CONFIG)
  config_lib.apply_overrides(cfg, [*SMALL, *overrides])
  return cfg


def test_pack_hand_made_documents():
  docs = [packing.text_document([5, 6, 7]),                 # 4 pairs
          packing.task_document([8, 9], [10], "answer"),    # 4 pairs, loss on answer + eos
          packing.text_document(list(range(11, 21))),       # 11 pairs: cut 8 | 3
          packing.task_document([8, 9, 10, 11], [12], "answer")]  # 6 pairs: next row
  rows = list(packing.pack(docs, seq_len=8))
  get = lambda k: np.stack([r[k] for r in rows])
  B, E = BOS_ID, EOS_ID
  np.testing.assert_array_equal(get("inputs"), [
      [B, 5, 6, 7, B, 8, 9, 10],
      [B, 11, 12, 13, 14, 15, 16, 17],
      [18, 19, 20, 0, 0, 0, 0, 0],
      [B, 8, 9, 10, 11, 12, 0, 0]])
  np.testing.assert_array_equal(get("targets"), [
      [5, 6, 7, E, 8, 9, 10, E],
      [11, 12, 13, 14, 15, 16, 17, 18],
      [19, 20, E, 0, 0, 0, 0, 0],
      [8, 9, 10, 11, 12, E, 0, 0]])
  np.testing.assert_array_equal(get("segment_ids"), [
      [1, 1, 1, 1, 2, 2, 2, 2],
      [1, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0, 0, 0, 0],
      [1, 1, 1, 1, 1, 1, 0, 0]])
  np.testing.assert_array_equal(get("positions"), [
      [0, 1, 2, 3, 0, 1, 2, 3],
      [0, 1, 2, 3, 4, 5, 6, 7],
      [0, 1, 2, 0, 0, 0, 0, 0],
      [0, 1, 2, 3, 4, 5, 0, 0]])
  np.testing.assert_array_equal(get("loss_mask"), [
      [1, 1, 1, 1, 0, 0, 1, 1],
      [1, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 1, 1, 0, 0]])


def test_task_examples_go_into_the_first_open_row_with_room():
  task = lambda *q: packing.task_document(list(q), [4], "answer")
  docs = [task(10, 11, 12), task(20, 21, 22), task(30), task(40)]  # 5, 5, 3, 3 pairs
  inputs = lambda rows: [list(r["inputs"]) for r in rows]
  B = BOS_ID
  # In order, the third example fills the second row and the fourth starts a third.
  assert inputs(packing.pack(docs, seq_len=8)) == [
      [B, 10, 11, 12, 4, 0, 0, 0], [B, 20, 21, 22, 4, B, 30, 4], [B, 40, 4, 0, 0, 0, 0, 0]]
  # With two open rows, the third fills the first row and the fourth the second.
  assert inputs(packing.pack(docs, seq_len=8, open_rows=2)) == [
      [B, 10, 11, 12, 4, B, 30, 4], [B, 20, 21, 22, 4, B, 40, 4]]


def test_open_rows_keep_every_example_once_and_fill_rows_better():
  rng = np.random.default_rng(0)
  docs = [packing.task_document(rng.integers(4, 50, rng.choice([10, 26])), [5], "answer")
          for _ in range(500)]
  ordered = _examples(list(packing.pack(docs, seq_len=32)))
  window = _examples(list(packing.pack(docs, seq_len=32, open_rows=packing.OPEN_ROWS)))
  assert len(window.inputs) < 0.95 * len(ordered.inputs)
  pieces = lambda ex: sorted(
      tuple(ex.inputs[i][ex.segment_ids[i] == s]) for i in range(len(ex.inputs))
      for s in range(1, ex.segment_ids[i].max() + 1))
  assert pieces(window) == pieces(ordered) == sorted(tuple(d.tokens[:-1]) for d in docs)


def test_task_example_longer_than_a_row_is_a_config_error():
  with pytest.raises(ConfigError, match="seq_len"):
    list(packing.pack([packing.task_document(list(range(4, 14)), [4], "answer")], seq_len=8))


def test_mix_follows_token_shares():
  def stream(length):
    while True:
      yield packing.text_document([7] * length)
  docs = list(zip(range(2000), packing.mix([stream(30), stream(5)], [0.95, 0.05])))
  tokens = np.zeros(2)
  for _, doc in docs:
    tokens[0 if len(doc) == 31 else 1] += len(doc)
  assert abs(tokens[1] / tokens.sum() - 0.05) < 31 / tokens.sum()  # within one document


def _lm_forward(vocab=64):
  """A small LM's forward pass, jitted, with random parameters drawn by numpy.

  (XLA takes far longer to compile the model's random initialisers than its forward.)
  """
  cfg = tiny_config().model
  graphdef, abstract = nnx.split(nnx.eval_shape(lambda: make_model(cfg, vocab, seed=0)))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda a: rng.normal(0, 0.2, a.shape).astype(a.dtype), abstract)
  return jax.jit(lambda *args: nnx.merge(graphdef, params)(*args))


def test_segment_attention_equals_each_document_alone():
  rng = np.random.default_rng(0)
  docs = [packing.text_document(rng.integers(4, 64, n)) for n in (5, 9, 3)]
  (row,) = packing.pack(docs, seq_len=24)
  model = _lm_forward()
  packed = model(row["inputs"][None], row["positions"][None], row["segment_ids"][None])[0]
  start = 0
  for doc in docs:
    alone = model(doc.tokens[None, :-1])[0]
    np.testing.assert_allclose(packed[start:start + len(doc)], alone, atol=1e-5, rtol=0)
    start += len(doc)
  # Without segment ids the later documents would see the earlier ones.
  plain = model(row["inputs"][None])[0]
  assert np.abs(plain[5:14] - packed[5:14]).max() > 1e-3


def _random_documents(n, seed=0):
  rng = np.random.default_rng(seed)
  docs = []
  for i in range(n):
    if i % 4 == 3:
      docs.append(packing.task_document(rng.integers(4, 50, 5), rng.integers(4, 50, 3), "answer"))
    else:
      docs.append(packing.text_document(rng.integers(4, 50, rng.integers(1, 40))))
  return docs


def _examples(rows):
  return pipeline.Examples(**{k: np.stack([r[k] for r in rows]) for k in packing.FIELDS})


def test_every_token_once_per_epoch_in_a_fixed_order():
  docs = _random_documents(300)
  examples = _examples(list(packing.pack(docs, seq_len=32)))
  # Reading the rows back piece by piece gives every document's pairs once, in order.
  pieces_in, pieces_out = [], []
  for i in range(len(examples)):
    seg = examples.segment_ids[i]
    for s in range(1, seg.max() + 1):
      assert np.array_equal(examples.positions[i][seg == s], np.arange((seg == s).sum()))
      pieces_in.append(examples.inputs[i][seg == s])
      pieces_out.append(examples.targets[i][seg == s])
  np.testing.assert_array_equal(np.concatenate(pieces_in),
                                np.concatenate([d.tokens[:-1] for d in docs]))
  np.testing.assert_array_equal(np.concatenate(pieces_out),
                                np.concatenate([d.tokens[1:] for d in docs]))

  # One epoch of the training stream serves every row once; two processes serve the
  # same global batches as one, and a second pipeline the same order.
  n = len(examples) - len(examples) % 8
  examples = pipeline.Examples(**examples.rows(slice(0, n)))
  def epoch(process_index=0, process_count=1):
    ds = iter(pipeline.train_dataset(examples, global_batch=8, seed=3,
                                     process_index=process_index, process_count=process_count))
    return [next(ds) for _ in range(n // 8)]
  one = epoch()
  served = np.concatenate([b["inputs"] for b in one])
  assert sorted(map(bytes, served)) == sorted(map(bytes, examples.inputs))
  assert all(set(b) == set(packing.FIELDS) for b in one)
  halves = [epoch(p, 2) for p in (0, 1)]
  for t, batch in enumerate(one):
    merged = np.empty_like(batch["inputs"])
    merged[0::2], merged[1::2] = halves[0][t]["inputs"], halves[1][t]["inputs"]
    np.testing.assert_array_equal(merged, batch["inputs"])
  again = epoch()
  assert all(np.array_equal(a["inputs"], b["inputs"]) for a, b in zip(one, again))


def test_prepared_text_mixture_is_deterministic(tmp_path):
  cfg = text_config()
  with mocked_corpora():
    first = builders.prepare(cfg.data, str(tmp_path / "a"))
    second = builders.prepare(cfg.data, str(tmp_path / "b"))
  for split in ("train", "eval"):
    a, b = (pipeline.load_split(p, split, 64, "answer") for p in (first, second))
    assert len(a) == {"train": 256, "eval": 32}[split]
    for k in packing.FIELDS:
      np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
  assert first.tokenizer.model_proto == second.tokenizer.model_proto
  train = pipeline.load_split(first, "train", 64, "answer")
  # Arithmetic documents hold about 5% of the tokens; every row is (nearly) full.
  starts = (train.positions == 0) & (train.segment_ids > 0)
  tok = first.tokenizer
  task = np.zeros_like(train.segment_ids, bool)
  for i, j in zip(*np.nonzero(starts)):
    seg = train.segment_ids[i] == train.segment_ids[i, j]
    if "+" in tok.decode(train.inputs[i][seg]):
      task[i] |= seg
  assert 0.035 < task.sum() / (train.segment_ids > 0).sum() < 0.065
  assert (train.segment_ids == 0).mean() < 0.02
  assert first.tokenizer.encode("123") == [first.tokenizer.encode(d)[0] for d in "123"]


def test_missing_corpus_is_one_clear_line(tmp_path, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  with pytest.raises(ConfigError, match=r"python -m scaling.data.corpora lm1b") as info:
    builders.prepare(text_config("data.mixture=(('text:lm1b', 1.0),)").data, str(tmp_path))
  assert "\n" not in str(info.value)


def test_unknown_mixture_source_is_a_config_error():
  with pytest.raises(ConfigError, match="data.mixture"):
    validate(text_config("data.mixture=(('txt:lm1b', 1.0),)"))


def test_size_ladder_matches_its_table():
  table = {"tiny": 98e3, "1m": 0.98e6, "3m": 3.15e6, "10m": 10.6e6, "30m": 31.5e6,
           "100m": 99e6, "300m": 302e6, "1b": 1.01e9}
  for size, params in table.items():
    cfg = config_lib.load(f"{TEXT_CONFIG}:size={size},corpus=c4")
    validate(cfg)  # shapes only: every size's mesh and dimensions are consistent
    n = counting.lm_params(cfg.model, cfg.data.vocab_size).non_embedding
    assert abs(n / params - 1) < 0.01, (size, n)
  cfg = config_lib.load(f"{TEXT_CONFIG}:size=1b,mesh=v5e-16")
  assert (cfg.mesh.fsdp, cfg.model.dtype, cfg.model.remat) == (16, "bfloat16", "dots_saveable")
  assert config_lib.load(f"{TEXT_CONFIG}:size=300m,mesh=gpu8").model.attention == "cudnn"


def test_text_and_arithmetic_train_end_to_end(tmp_path):
  cfg = text_config("train.steps=60", "train.batch_size=16", "train.warmup_steps=5",
                    "train.log_every=10", "eval.every_steps=10", "eval.batch_size=32",
                    "eval.max_examples=32", "checkpoint.every_steps=1000")
  workdir = str(tmp_path / "run")
  with mocked_corpora():
    # One device: the test is of the trained model, not of its layout.
    assert loop.train(cfg, workdir, devices=jax.devices()[:1]) == exits.OK
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    evals = [r["eval_loss"] for r in map(json.loads, f) if "eval_loss" in r]
  print("eval losses", evals)
  assert len(evals) == 6
  assert evals[-1] < evals[0] - 0.3, evals
  assert summary(workdir)["status"] == "completed"
  assert os.path.exists(os.path.join(workdir, "tokenizer.model"))


@pytest.mark.parametrize("offline", ["resolver", "proxy"])
def test_preparing_a_corpus_offline_is_one_line_that_says_where_to_place_it(
    offline, tmp_path, monkeypatch, capsys):
  """No network: names fail to resolve, or the environment sends downloads to a local
  port where nothing listens. Either way one `error:` line within seconds (TFDS retries
  for minutes), naming the file to download and where to put it."""
  import socket
  import time
  from scaling.data import corpora
  if offline == "resolver":
    def no_names(*args, **kwargs):
      raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    monkeypatch.setattr(socket, "getaddrinfo", no_names)
  else:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  started = time.monotonic()
  assert corpora.main(["tiny_shakespeare"]) == 1
  assert time.monotonic() - started < 10
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: cannot download tiny_shakespeare"), lines
  manual = os.path.join(str(tmp_path), "downloads", "manual", "input.txt")
  assert f"place it at {manual}" in lines[0] and "tinyshakespeare/input.txt" in lines[0]
