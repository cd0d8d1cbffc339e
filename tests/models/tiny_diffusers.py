"""A tiny, randomly initialised diffusers text-to-image pipeline folder, built by the tests.

A ``StableDiffusionPipeline`` (the layout every diffusers text-to-image folder shares:
``model_index.json`` plus one subfolder per component) cut down until the folder is a few
hundred kB: a two-level UNet, a two-level VAE (so latents are half the image size), a
one-layer CLIP text encoder and a CLIP tokenizer over a byte-level vocabulary the builder
writes itself. Nothing downloads. It paints noise, quickly: a 4-step 64 px render takes tens
of milliseconds. Needs torch, diffusers and transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

HIDDEN, MAX_TOKENS = 16, 16
SPECIALS = ("<|startoftext|>", "<|endoftext|>")


def build_tiny_text_to_image(folder: Path, seed: int = 0) -> Path:
    """Write a loadable pipeline folder (``model_index.json`` and its parts); returns ``folder``.

    Any height and width that are multiples of 8 render at that size.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=HIDDEN,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=256 * 2 + len(SPECIALS),
            hidden_size=HIDDEN,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=256 * 2,
            eos_token_id=256 * 2 + 1,
            pad_token_id=256 * 2 + 1,
        )
    )
    tokenizer = CLIPTokenizer.from_pretrained(
        str(_write_vocabulary(folder / "tokenizer")), model_max_length=MAX_TOKENS
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        # DDIM: deterministic for a seed, and free of the Euler family's numpy warnings.
        scheduler=DDIMScheduler(steps_offset=1, clip_sample=False, set_alpha_to_one=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(str(folder))
    return folder


def _write_vocabulary(folder: Path) -> Path:
    """``vocab.json`` and ``merges.txt`` of a merge-free byte-level BPE: every byte is a token.

    CLIP's byte-level pre-tokenizer maps each byte to one printable character, and a word's
    last piece carries ``</w>``; both forms of every byte are in the vocabulary, so any prompt
    tokenizes without unknowns.
    """
    folder.mkdir(parents=True, exist_ok=True)
    characters = _byte_characters()
    tokens = characters + [f"{c}</w>" for c in characters] + list(SPECIALS)
    (folder / "vocab.json").write_text(
        json.dumps({token: i for i, token in enumerate(tokens)}, ensure_ascii=False),
        encoding="utf-8",
    )
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def _byte_characters() -> list[str]:
    """GPT-2's byte-to-character table (``bytes_to_unicode``), in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    extra = 0
    table: dict[int, str] = {}
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return [table[byte] for byte in range(256)]
