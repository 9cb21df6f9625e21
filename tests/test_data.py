"""Tokenizer, arithmetic generator, TFDS builder and grain pipeline."""

import numpy as np
import pytest

from scaling.data import builders, pipeline
from scaling.data import tokenizer as tokenizer_lib
from scaling.data.tasks import arithmetic, mixture, repeats, splits
from tests.helpers import tiny_config

UNICODE_SAMPLES = [
    "plain ascii, with punctuation!?",
    "  leading and   repeated   spaces ",
    "tabs\tand\nnewlines\r\n",
    "héllo wörld — naïve café",
    "日本語のテキスト、中文文本",
    "emoji 😀👍🏽 and flags 🇫🇷",
    "combining e\u0301 and zero\u200bwidth",
    "math ∑∫√∞ ≠ ≤ ≥",
    "▁literal",
    "",
]


@pytest.fixture(scope="module")
def prepared():
  return builders.prepare(tiny_config().data)


def test_every_digit_is_its_own_token(prepared):
  tok = prepared.tokenizer
  for text in ["0123456789", "12+345=753", "999*999=", "1000000"]:
    pieces = tok.pieces(text)
    digits = [p for p in pieces if p.isdigit()]
    assert digits == [c for c in text if c.isdigit()], pieces
  assert len(tok.encode("9876543210")) == 10


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_tokenizer_round_trips_unicode(prepared, text):
  tok = prepared.tokenizer
  assert tok.decode(tok.encode(text)) == text


def test_tokenizer_saves_and_loads(prepared, tmp_path):
  path = str(tmp_path / "tok.model")
  prepared.tokenizer.save(path)
  loaded = tokenizer_lib.Tokenizer.load(path)
  assert loaded.encode("12+34=64") == prepared.tokenizer.encode("12+34=64")
  assert loaded.vocab_size == prepared.tokenizer.vocab_size <= 288


def test_reserved_ids(prepared):
  tok = prepared.tokenizer
  ids = tok.encode("1+1=2")
  assert not {tokenizer_lib.PAD_ID, tokenizer_lib.BOS_ID, tokenizer_lib.EOS_ID} & set(ids)
  assert tok.decode([tokenizer_lib.BOS_ID, *ids, tokenizer_lib.EOS_ID, 0, 0]) == "1+1=2"


@pytest.mark.parametrize("op", arithmetic.OPS)
@pytest.mark.parametrize("reverse", [False, True])
def test_answers_are_correct(op, reverse):
  for p in arithmetic.generate("train", 2000, seed=1, ops=(op,), min_digits=1, max_digits=4,
                               eval_fraction=0.05):
    answer = p.answer(reverse)
    sign, digits = ("-", answer[1:]) if answer.startswith("-") else ("", answer)
    value = int(sign + (digits[::-1] if reverse else digits))
    assert value == eval(f"{p.a}{p.op}{p.b}")
    assert p.question == f"{p.a}{op}{p.b}="


def test_operands_have_the_configured_digits():
  problems = list(arithmetic.generate("train", 3000, seed=0, ops=("+",), min_digits=2,
                                      max_digits=4, eval_fraction=0.02))
  lengths = {len(str(x)) for p in problems for x in (p.a, p.b)}
  assert lengths == {2, 3, 4}


def test_train_and_eval_splits_share_no_problem():
  kwargs = dict(ops=("+", "-", "*"), min_digits=1, max_digits=2, eval_fraction=0.1, seed=0)
  train = set(arithmetic.generate("train", 50_000, **kwargs))
  evals = list(arithmetic.generate("eval", 500, **kwargs))
  assert len(set(evals)) == len(evals) == 500
  assert not train & set(evals)
  # Disjoint by construction: membership is a function of the problem alone.
  assert all(arithmetic.in_eval_split(p, 0.1) for p in evals)
  assert not any(arithmetic.in_eval_split(p, 0.1) for p in train)
  # A large share of this small space is drawn, so disjointness is not luck.
  assert len(train) > 5_000


def test_repeated_strings_are_their_own_answer_and_split_by_hash():
  """The copying task: the answer is the question again, of every length in range, drawn
  alike for a seed, and no held-out string is trained on."""
  train = list(repeats.generate("train", 3000, seed=0, eval_fraction=0.1))
  evals = list(repeats.generate("eval", 300, seed=0, eval_fraction=0.1))
  assert train == list(repeats.generate("train", 3000, seed=0, eval_fraction=0.1))
  assert all(p.answer == p.question and set(p.question) <= set(repeats.ALPHABET)
             for p in train + evals)
  assert {len(p.question) for p in train} == set(range(repeats.MIN_LETTERS,
                                                       repeats.MAX_LETTERS + 1))
  assert all(splits.in_eval_split(p.question, 0.1) for p in evals)
  assert not any(splits.in_eval_split(p.question, 0.1) for p in train)
  cfg = tiny_config("data.mixture=(('repeat', 1.0),)").data
  record = next(mixture.train_records(1, seed=0, params=cfg))
  assert (record.task, record.answer) == ("repeat", record.question)


def test_builder_writes_disjoint_array_record_splits(prepared):
  train = {r["question"] for r in builders.read_all(prepared.sources["train"])}
  evals = [r["question"] for r in builders.read_all(prepared.sources["eval"])]
  assert len(prepared.sources["train"]) == 4000 and len(evals) == 256
  assert not train & set(evals)
  import glob
  assert glob.glob(f"{prepared.directory}/*.array_record-*")


def test_loss_mask_covers_answer_and_eos(prepared):
  cfg = tiny_config()
  examples = pipeline.load_split(prepared, "eval", cfg.data.seq_len, "answer")
  tok = prepared.tokenizer
  record = builders.read_all(prepared.sources["eval"], limit=1)[0]
  row = examples.rows(0)
  targets = row["targets"][row["loss_mask"] > 0]
  assert tok.decode(targets[:-1]) == record["answer"].decode()
  assert targets[-1] == tokenizer_lib.EOS_ID
  assert row["inputs"][0] == tokenizer_lib.BOS_ID
  np.testing.assert_array_equal(row["inputs"][1:], row["targets"][:-1])
  everything = pipeline.tokenize([record], tok, cfg.data.seq_len, "all")
  assert everything.loss_mask.sum() == (everything.targets != 0).sum()


def _take(ds_iter, n):
  return [next(ds_iter) for _ in range(n)]


def test_pipeline_is_deterministic_and_process_invariant(prepared):
  examples = pipeline.load_split(prepared, "train", 16, "answer")
  one = _take(iter(pipeline.train_dataset(examples, global_batch=8, seed=3, process_index=0,
                                          process_count=1)), 5)
  again = _take(iter(pipeline.train_dataset(examples, global_batch=8, seed=3, process_index=0,
                                            process_count=1)), 5)
  other_seed = _take(iter(pipeline.train_dataset(examples, global_batch=8, seed=4,
                                                 process_index=0, process_count=1)), 5)
  halves = [_take(iter(pipeline.train_dataset(examples, global_batch=8, seed=3,
                                              process_index=p, process_count=2)), 5)
            for p in (0, 1)]
  for t in range(5):
    np.testing.assert_array_equal(one[t]["inputs"], again[t]["inputs"])
    # Two processes together read exactly the rows of the single-process global batch.
    rows = lambda b: sorted(map(tuple, b["inputs"]))
    assert rows(one[t]) == sorted(rows(halves[0][t]) + rows(halves[1][t]))
  assert any((one[t]["inputs"] != other_seed[t]["inputs"]).any() for t in range(5))


@pytest.mark.parametrize("n, global_batch, seed, processes", [
    (100, 32, 7, 4), (1527, 128, 0, 1), (37, 8, 2**32 - 1, 2)])
def test_row_order_is_grains_shuffle(n, global_batch, seed, processes):
  """The rows of every batch, over several epochs and per process, are those of grain's own
  `range(n).shuffle(seed).repeat()[p::P].batch(...)` (the order stored runs were trained
  in), and so is the iterator's state."""
  import grain
  options = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
  for p in range(processes):
    ds = grain.MapDataset.range(n).shuffle(seed=seed).repeat()[p::processes]
    grains = iter(ds.batch(global_batch // processes, drop_remainder=True)
                  .to_iter_dataset(options))
    ours = iter(grain.MapDataset.range(10**9).map(
        lambda t: pipeline.batch_rows(t, n=n, batch=global_batch // processes, seed=seed,
                                      process_index=p, process_count=processes))
        .to_iter_dataset(options))
    for _ in range(3 * n // global_batch + 2):  # past the third epoch
      np.testing.assert_array_equal(next(ours), next(grains))
    assert ours.get_state() == grains.get_state()


def test_iterator_state_restores_position(prepared):
  examples = pipeline.load_split(prepared, "train", 16, "answer")
  it = iter(pipeline.train_dataset(examples, global_batch=8, seed=0, process_index=0,
                                   process_count=1))
  _take(it, 3)
  state = it.get_state()
  expected = _take(it, 2)
  fresh = iter(pipeline.train_dataset(examples, global_batch=8, seed=0, process_index=0,
                                      process_count=1))
  fresh.set_state(state)
  for a, b in zip(expected, _take(fresh, 2)):
    np.testing.assert_array_equal(a["inputs"], b["inputs"])


def test_eval_batches_cover_each_example_once(prepared):
  examples = pipeline.load_split(prepared, "eval", 16, "answer")
  batches = list(pipeline.eval_batches(examples, global_batch=48, max_examples=100,
                                       process_index=0, process_count=1))
  assert len(batches) == 3 and all(b["inputs"].shape == (48, 16) for b in batches)
  counted = sum(int((b["loss_mask"].sum(-1) > 0).sum()) for b in batches)
  assert counted == 100
