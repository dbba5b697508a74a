"""Offline CLIP tokenizers built from the BPE merges that open_clip ships.

No hub access: the byte-level BPE of OpenAI CLIP (`bpe_simple_vocab_16e6.txt.gz`, inside the
`open_clip` package) is truncated to its first `n_merges` merges, giving a small but real CLIP
vocabulary (256 bytes, 256 end-of-word bytes, one token per merge, then the two specials), so
token ids follow CLIP's ordering and plain English words split into sensible pieces.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
DEFAULT_MERGES = 2000


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2 reversible byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def bpe_path() -> Path:
    """Path of the CLIP BPE merges file shipped with open_clip."""
    import open_clip

    return Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"


@lru_cache(maxsize=8)
def clip_vocab_and_merges(n_merges: int = DEFAULT_MERGES) -> tuple[dict[str, int], tuple]:
    """CLIP vocabulary (token -> id) and merge list using the first `n_merges` merges."""
    with gzip.open(bpe_path(), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    full = 49152 - 256 - 2
    if not 0 <= n_merges <= full:
        raise ValueError(f"n_merges must be in [0, {full}], got {n_merges}")
    merges = tuple(tuple(line.split()) for line in lines[1 : 1 + n_merges])
    byte_tokens = list(_bytes_to_unicode().values())
    tokens = byte_tokens + [t + "</w>" for t in byte_tokens]
    tokens += ["".join(m) for m in merges] + [BOS, EOS]
    vocab: dict[str, int] = {}
    for tok in tokens:  # keep the first id if a merge result repeats (never in CLIP's file)
        vocab.setdefault(tok, len(vocab))
    return vocab, merges


def build_clip_tokenizer(
    out_dir: str | Path | None = None,
    n_merges: int = DEFAULT_MERGES,
    pad_token: str = EOS,
    model_max_length: int = 77,
):
    """A transformers `CLIPTokenizer` over the truncated CLIP BPE; saved to `out_dir` if given.

    SDXL's first tokenizer pads with ``<|endoftext|>``, its second one with ``"!"``.
    """
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges(n_merges)
    tok = CLIPTokenizer(
        vocab=dict(vocab),
        merges=[tuple(m) for m in merges],
        pad_token=pad_token,
        model_max_length=model_max_length,
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(out))  # transformers 5 writes tokenizer.json only
        # classic slow-tokenizer files too, for tools that read vocab.json + merges.txt
        (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2"] + [" ".join(m) for m in merges]
        (out / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tok


# SentencePiece ids as google/siglip-so400m-patch14-384's spiece.model lays them out: pad 0,
# end-of-text 1 (also the padding token SiglipTokenizer uses), unknown 2; no beginning token.
SPM_IDS = dict(pad_id=0, eos_id=1, unk_id=2, bos_id=-1)


# Words of the project's prompts (subjects, styles, scenes): the tiny SentencePiece corpus.
_SPM_WORDS = """a an the of in on at with and photo picture painting drawing illustration style
watercolor cartoon flat line crayon kid oil sketch render rendering 3d pixel art anime
dog cat robot toy teapot backpack vase bowl can clock sneaker boot candle duck monster bear
red blue green yellow purple black white pink orange brown shiny wooden metal plastic fluffy
beach snow forest city street mountain river lake desert jungle table floor grass sky night
wearing hat sunglasses scarf sitting standing floating top next to front behind under over
bay flowers woman man girl boy house car bridge tower garden rain sunset moon stars water
""".split()


def _spm_corpus() -> list[str]:
    """Deterministic sentences over `_SPM_WORDS` (each word in several contexts)."""
    n = len(_SPM_WORDS)
    return [" ".join(_SPM_WORDS[(i * k) % n] for k in range(1, 9)) for i in range(1, 4 * n)]


def build_siglip_tokenizer(out_dir: str | Path | None = None, vocab_size: int = 300,
                           model_max_length: int = 64):
    """A transformers `SiglipTokenizer` (SentencePiece unigram, trained offline in well under a
    second on `_spm_corpus`): the tokenizer class google/siglip-so400m-patch14-384 ships, which
    needs `sentencepiece` and `protobuf`. Saved to `out_dir` (spiece.model + configs) if given."""
    import io
    import tempfile

    import sentencepiece as spm
    from transformers import SiglipTokenizer

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_spm_corpus()), model_writer=buf, vocab_size=vocab_size,
        model_type="unigram", pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        hard_vocab_limit=False, num_threads=1, minloglevel=2, **SPM_IDS)
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "spiece.model"
        model_file.write_bytes(buf.getvalue())
        tok = SiglipTokenizer(vocab_file=str(model_file), model_max_length=model_max_length)
        if out_dir is not None:
            tok.save_pretrained(str(out_dir))
    return tok
