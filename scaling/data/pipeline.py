"""Grain pipelines: tokenize, pad, mask, shuffle, batch, shard per process, globalize.

One example is `<bos> question answer <eos>` padded to `seq_len + 1` tokens; the model sees
the first `seq_len` and predicts the last `seq_len`. The loss mask covers the answer and
`<eos>` (or every real token with `loss_on="all"`).

Task datasets are small, so a split is tokenized once into arrays (cached beside the
dataset) and the grain pipeline shuffles and batches row indices into them. Mixtures with
natural text arrive already packed (`scaling.data.corpora`): their rows also carry segment
ids and positions, and are shuffled and batched the same way.

The global order of examples depends only on the data config and seed: process `p` of
`P` reads examples `p, p + P, p + 2P, ...`, so the examples of global batch `t` are the
same whatever the number of processes, and whatever the model.
"""

from __future__ import annotations

import functools
import os
import sys

import grain
import grain.experimental
import jax
import numpy as np

from scaling.errors import ConfigError
from scaling.data import packing
from scaling.data.examples import FIELDS, Examples, Prepared, read_all
from scaling.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

def tokenize(records: list[dict], tokenizer: Tokenizer, seq_len: int, loss_on: str) -> Examples:
  """Formats question/answer records into fixed-length, loss-masked rows."""
  questions = tokenizer.encode_batch([r["question"].decode() for r in records])
  answers = tokenizer.encode_batch([r["answer"].decode() for r in records])
  seq = np.full((len(records), seq_len + 1), PAD_ID, np.int32)
  mask = np.zeros((len(records), seq_len), np.float32)
  for i, (question, answer) in enumerate(zip(questions, answers)):
    tokens = [BOS_ID, *question, *answer, EOS_ID]
    if len(tokens) > seq_len + 1:
      raise ConfigError(f"config.data.seq_len: an example needs {len(tokens) - 1} positions, "
                        f"more than seq_len={seq_len}")
    seq[i, :len(tokens)] = tokens
    # Target position j predicts token j + 1; the answer and <eos> end the sequence.
    first = 0 if loss_on == "all" else len(tokens) - 2 - len(answer)
    mask[i, first:len(tokens) - 1] = 1.0
  return Examples(seq[:, :-1], seq[:, 1:], mask)


def pack_tokenized(records: list[dict], tokenizer: Tokenizer, seq_len: int,
                   loss_on: str) -> Examples:
  """Question/answer records packed several to a row, each into the first of
  `packing.OPEN_ROWS` open rows it fits in, with segment ids and positions
  (`scaling.data.packing`); no example is cut, so a row ends padded where nothing fits."""
  questions = tokenizer.encode_batch([r["question"].decode() for r in records])
  answers = tokenizer.encode_batch([r["answer"].decode() for r in records])
  docs = (packing.task_document(q, a, loss_on) for q, a in zip(questions, answers))
  rows = list(packing.pack(docs, seq_len, open_rows=packing.OPEN_ROWS))
  return Examples(**{k: np.stack([row[k] for row in rows]) for k in packing.FIELDS})


def load_split(prepared: Prepared, split: str, seq_len: int, loss_on: str,
               pack: bool = False) -> Examples:
  """The tokenized split, from the cache beside the dataset or made (and cached) now.

  With `pack`, training examples share rows; held-out examples always have a row each,
  so exact match can be read per row.
  """
  if prepared.splits is not None:  # Text mixtures are tokenized and packed when prepared.
    return prepared.splits[split]
  pack = pack and split == "train"
  packed = f"-packed{packing.OPEN_ROWS}" if pack else ""
  name = f"tokens-{split}-L{seq_len}-{loss_on}{packed}.npz"
  path = os.path.join(prepared.directory, name)
  fields = packing.FIELDS if pack else FIELDS
  if os.path.exists(path):
    with np.load(path) as f:
      return Examples(**{k: f[k] for k in fields})
  records = read_all(prepared.sources[split])
  examples = (pack_tokenized if pack else tokenize)(records, prepared.tokenizer, seq_len,
                                                     loss_on)
  tmp = f"{path}.{os.getpid()}.tmp.npz"
  np.savez(tmp, **examples.rows(slice(None)))
  os.replace(tmp, path)
  return examples


def batch_rows(step: int, *, n: int, batch: int, seed: int, process_index: int,
               process_count: int) -> np.ndarray:
  """The rows this process reads for global batch `step`: positions `p, p + P, ...` of an
  endless order that shuffles the `n` rows anew each epoch, exactly as grain's
  `MapDataset.range(n).shuffle(seed).repeat()[p::P].batch(batch // P)` does (index_shuffle,
  the seed advanced by the epoch), one call per row instead of one per row and layer."""
  start = process_index + process_count * step * batch
  return np.array([grain.experimental.index_shuffle(r % n, max_index=n - 1,
                                                    seed=(seed + r // n) % 2**32, rounds=4)
                   for r in range(start, start + process_count * batch, process_count)],
                  np.int64)


def train_dataset(examples: Examples, *, global_batch: int, seed: int, process_index: int,
                  process_count: int) -> grain.IterDataset:
  """An endless stream of this process's rows of each global batch, reshuffled per epoch;
  its iterator's state is the number of global batches read, whatever the process count."""
  order = functools.partial(batch_rows, n=len(examples), batch=global_batch // process_count,
                            seed=seed, process_index=process_index,
                            process_count=process_count)
  ds = grain.MapDataset.range(sys.maxsize).map(lambda step: examples.rows(order(step)))
  # Rows come from memory: reading on this thread is faster than waking prefetch threads,
  # which would otherwise compete with the training step for the host's cores.
  return ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))


def eval_batches(examples: Examples, *, global_batch: int, max_examples: int,
                 process_index: int, process_count: int):
  """The first `max_examples` held-out examples in fixed order, this process's rows.

  The last batch is padded with all-zero-mask rows, so every batch has the same shape.
  """
  for index, valid in eval_indices(min(len(examples), max_examples), global_batch,
                                   process_index, process_count):
    batch = examples.rows(index)
    batch["loss_mask"] = batch["loss_mask"] * valid[:, None]
    yield batch


def eval_indices(n: int, global_batch: int, process_index: int, process_count: int):
  """This process's row indices of each fixed-size global batch over examples [0, n), and
  which are real (1.0) rather than repeats of the last example that pad the final batch."""
  for start in range(0, n, global_batch):
    index = np.arange(start, start + global_batch)[process_index::process_count]
    yield np.minimum(index, n - 1), (index < n).astype(np.float32)


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.NamedSharding,
              process_count: int) -> dict[str, jax.Array]:
  """Assembles this process's rows into global arrays sharded over the batch axis."""
  if process_count == 1:  # The fast path: one transfer for the whole batch.
    return jax.device_put(batch, sharding)
  out = {}
  for k, v in batch.items():
    global_shape = (v.shape[0] * process_count,) + v.shape[1:]
    out[k] = jax.make_array_from_process_local_data(sharding, v, global_shape)
  return out
