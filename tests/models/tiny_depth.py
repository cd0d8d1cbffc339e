"""A tiny random Depth Anything model, saved as transformers saves the real one, for the tests.

Same architecture and files as ``depth-anything/Depth-Anything-V2-Small-hf`` (``config.json``,
``model.safetensors``, ``preprocessor_config.json`` for a ``DPTImageProcessor``), shrunk: a
DINOv2 backbone of hidden size 16 and four layers on 56 px inputs, ~41k parameters, ~180 kB.
Its depth is random but deterministic (fixed seed); transformers' depth-estimation pipeline
loads and runs it exactly as it runs the real model.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIDE = 56  # a multiple of the 14-pixel patch


def build_tiny_depth(folder: Path, seed: int = 0) -> Path:
    """Write the model to ``folder`` (created); returns ``folder``."""
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    backbone = Dinov2Config(
        image_size=IMAGE_SIDE,
        patch_size=14,
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=8,
    )
    torch.manual_seed(seed)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(
        size={"height": IMAGE_SIDE, "width": IMAGE_SIDE},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,  # bicubic, as the real model's processor
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder
