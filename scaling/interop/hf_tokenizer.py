"""The toolkit's SentencePiece BPE as a Hugging Face fast tokenizer (`tokenizer.json`).

SentencePiece's BPE merges, at each step, the adjacent pair whose merged piece scores
highest; a `tokenizers` BPE applies the lowest-ranked merge. Ranking every merge by its
merged piece's score order gives the same segmentation, byte fallback included. The
tokenizer adds <s> when asked for special tokens, as the toolkit does before every prompt.
"""

from __future__ import annotations

from sentencepiece import sentencepiece_model_pb2

from scaling.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

# SentencePiece writes a space as this marker, and the decoder turns it back.
MARKER = "\u2581"
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6  # ModelProto.SentencePiece.Type


def _pieces(tokenizer: Tokenizer):
  proto = sentencepiece_model_pb2.ModelProto()
  proto.ParseFromString(tokenizer.model_proto)
  spec = proto.normalizer_spec
  # What the mapping below assumes of the toolkit's trainer (scaling.data.tokenizer.train).
  assert proto.trainer_spec.model_type == proto.trainer_spec.BPE
  assert not spec.add_dummy_prefix and not spec.remove_extra_whitespaces
  assert proto.trainer_spec.byte_fallback
  return proto.pieces


def merges(vocab: dict[str, int]) -> list[tuple[str, str]]:
  """Every split of a piece into two pieces, ranked by the merged piece's id (SentencePiece
  orders BPE pieces by score) and then by the parts' ids."""
  ranked = []
  for piece, piece_id in vocab.items():
    for cut in range(1, len(piece)):
      left, right = piece[:cut], piece[cut:]
      if left in vocab and right in vocab:
        ranked.append((piece_id, vocab[left], vocab[right], left, right))
  return [(left, right) for *_, left, right in sorted(ranked)]


def fast_tokenizer(tokenizer: Tokenizer):
  """A `transformers.PreTrainedTokenizerFast` that encodes and decodes as `tokenizer`."""
  from tokenizers import AddedToken, Tokenizer as HFTokenizer, decoders, normalizers, processors
  from tokenizers.models import BPE
  from transformers import PreTrainedTokenizerFast

  pieces = _pieces(tokenizer)
  vocab = {p.piece: i for i, p in enumerate(pieces)}
  # Merges build normal pieces only: control, unknown and byte pieces are never merged into.
  mergeable = {p.piece: i for i, p in enumerate(pieces) if p.type == NORMAL}
  hf = HFTokenizer(BPE(vocab=vocab, merges=merges(mergeable), unk_token=pieces[UNK_ID].piece,
                       fuse_unk=True, byte_fallback=True))
  hf.normalizer = normalizers.Replace(" ", MARKER)
  hf.decoder = decoders.Sequence([decoders.Replace(MARKER, " "), decoders.ByteFallback(),
                                  decoders.Fuse()])
  special = [pieces[i].piece for i in (PAD_ID, BOS_ID, EOS_ID, UNK_ID)]
  hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
  bos = pieces[BOS_ID].piece
  hf.post_processor = processors.TemplateProcessing(
      single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, BOS_ID)])
  return PreTrainedTokenizerFast(
      tokenizer_object=hf, pad_token=special[0], bos_token=special[1], eos_token=special[2],
      unk_token=special[3], split_special_tokens=True, padding_side="left")
