"""A tiny, randomly initialised Qwen2.5-VL built offline, for tests against real engines.

Everything is made here: a byte-level BPE tokenizer trained on a generated corpus, Qwen's
special tokens, the tool-call tags as plain added tokens, the Qwen2.5-VL chat template merged
with Qwen2.5's tools section (the very file ``sleuth model-server`` serves Qwen2.5-VL with), a
small image processor and about 0.6 M random weights. Nothing is downloaded. The result loads
with transformers' ``AutoProcessor`` / ``AutoModelForImageTextToText`` and with vLLM.

Rebuilds are byte-identical (same library versions), and :func:`tiny_vlm_dir` builds once per
version of this builder into ``.cache/engines`` and reuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sleuth.servers.vllm.recipe import chat_template, serving_family

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "engines"
CHAT_TEMPLATE = chat_template(serving_family("qwen2.5-vl"))

#: Image size bounds of the processor, in pixels. One image token covers 28x28 pixels
#: (14-pixel patches merged 2x2), so an image becomes 4 to 64 tokens.
PATCH_SIZE = 14
MERGE_SIZE = 2
MIN_PIXELS = 56 * 56
MAX_PIXELS = 224 * 224
#: The tokenizer's trained vocabulary size (special and added tokens come on top).
VOCAB_SIZE = 2048
SEED = 0

# Qwen2/2.5-VL special tokens, in the real tokenizer's order (the ids are ours, not Qwen's).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Added as plain (not special) tokens, as in Qwen: decoding with skip_special_tokens keeps
#: them, and vLLM's hermes tool parser looks their ids up.
TOOL_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

_WORDS = (
    "the a an of to in on at for with and or not is are was be this that it its image photo "
    "picture region area box crop zoom tool call result verdict confidence evidence score real "
    "fake ai generated authentic manipulated uncertain camera noise error level analysis jpeg "
    "quality spectrum frequency provenance metadata watermark pixel pixels left right top bottom "
    "you are a forensic analyst look check find edited tampering answer question what why how "
    "which where show shows strong weak signal finding findings summary direction neutral "
    "description name arguments parameters type object properties required integer number "
    "string boolean array items minimum maximum enum additionalProperties function strict title "
    "default x0 y0 x1 y1 assistant user system content text tools help helpful"
).split()


def _corpus(rng: random.Random) -> Iterator[str]:
    """Yield the tokenizer's training text: generated, so every build sees the same bytes."""
    yield CHAT_TEMPLATE.read_text(encoding="utf-8")
    for _ in range(3000):
        yield " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 24))).capitalize() + "."
    for i in range(3000):
        box = {k: rng.randint(0, 4096) for k in ("x0", "y0", "x1", "y1")}
        yield json.dumps(
            {
                "name": rng.choice(("zoom", "ela", "noise", "spectrum", "jpeg", "provenance")),
                "arguments": box,
                "verdict": rng.choice(("ai", "real", "uncertain")),
                "confidence": round(rng.random(), 2),
                "boxes": [[box["x0"], box["y0"], box["x1"], box["y1"]]],
                "score": i % 101,
            }
        )
        yield json.dumps(
            {
                "type": "function",
                "function": {
                    "name": rng.choice(_WORDS),
                    "description": " ".join(rng.choice(_WORDS) for _ in range(8)),
                    "parameters": {
                        "type": "object",
                        "properties": {
                            rng.choice(_WORDS): {
                                "type": rng.choice(("integer", "number", "string", "boolean")),
                                "minimum": rng.randint(0, 10),
                                "maximum": rng.randint(10, 4096),
                            }
                        },
                        "required": [rng.choice(_WORDS)],
                        "additionalProperties": False,
                    },
                },
            }
        )


def _tokenizer():
    """Train the byte-level BPE tokenizer (every byte encodes; Qwen's special tokens first)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(random.Random(SEED)), trainer=trainer)
    tok.add_tokens(list(TOOL_TOKENS))
    return tok


def build_tiny_vlm(out_dir: Path) -> Path:
    """Build the tiny Qwen2.5-VL (processor, template, random weights) into ``out_dir``.

    Deterministic: two builds with the same library versions are byte-identical.

    Parameters
    ----------
    out_dir : Path
        Folder to write into (created if missing).

    Returns
    -------
    Path
        ``out_dir``.
    """
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    template = CHAT_TEMPLATE.read_text(encoding="utf-8")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer(),
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        bos_token=None,
        unk_token=None,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        chat_template=template,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS + TOOL_TOKENS}
    rows = -(-len(tokenizer) // 64) * 64  # embedding rows: len(tokenizer) rounded up

    text = {
        "vocab_size": rows,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,  # head_dim 32, a size vLLM's CPU attention supports
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "use_sliding_window": False,
        "sliding_window": None,
        "max_window_layers": 2,
        "bos_token_id": ids[PAD_TOKEN],
        "eos_token_id": ids[EOS_TOKEN],
        "pad_token_id": ids[PAD_TOKEN],
        # mrope_section must sum to head_dim // 2
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [4, 6, 6],
        },
        "tie_word_embeddings": False,
    }
    vision = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 2,
        "in_channels": 3,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": MERGE_SIZE,
        "temporal_patch_size": 2,
        "window_size": 112,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
        "tokens_per_second": 2,
        "hidden_act": "silu",
    }
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):  # vLLM reads them at top level
        setattr(config, key, text[key])
    torch.manual_seed(SEED)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config.eos_token_id = [ids[EOS_TOKEN], ids[PAD_TOKEN]]
    model.generation_config.pad_token_id = ids[PAD_TOKEN]
    model.generation_config.bos_token_id = ids[PAD_TOKEN]

    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    geometry = {"patch_size": PATCH_SIZE, "temporal_patch_size": 2, "merge_size": MERGE_SIZE}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessorPil(size=size, **geometry),
        # the processor class requires a video processor (this is what needs torchvision)
        video_processor=Qwen2VLVideoProcessor(size=size, **geometry),
        tokenizer=tokenizer,
        chat_template=template,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir


def builder_hash() -> str:
    """Hash of what determines the built files: this source, the template, library versions."""
    import tokenizers
    import torch
    import transformers

    digest = hashlib.sha256()
    for path in (Path(__file__), CHAT_TEMPLATE):
        digest.update(path.read_bytes())
    for version in (transformers.__version__, tokenizers.__version__, torch.__version__):
        digest.update(version.encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (so concurrent test processes build once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_build(name: str, build) -> Path:
    """Return ``CACHE / name``, calling ``build(tmp_dir)`` first if it does not exist yet.

    The build goes to a temporary folder beside the target that is renamed into place when
    complete, under a file lock: concurrent callers build once, and an interrupted build
    leaves no half-written model behind.

    Parameters
    ----------
    name : str
        Folder name under ``.cache/engines``.
    build : callable
        Called with an empty temporary folder to fill.

    Returns
    -------
    Path
        The complete folder.
    """
    final = CACHE / name
    if final.is_dir():
        return final
    with _locked(CACHE / f".{name}.lock"):
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=CACHE))
        try:
            build(tmp)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def tiny_vlm_dir() -> Path:
    """The tiny model's folder, built on first use into ``.cache/engines`` and reused.

    Returns
    -------
    Path
        ``.cache/engines/tiny-qwen2.5-vl-<hash of the builder>``.
    """
    return cached_build(f"tiny-qwen2.5-vl-{builder_hash()}", build_tiny_vlm)
