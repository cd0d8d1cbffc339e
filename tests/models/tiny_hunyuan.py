"""A tiny, randomly initialised Hunyuan3D-2-style model folder, built by the tests.

The layout and ``config.yaml`` targets are upstream's (``hunyuan3d-dit-v2-0``): a
``Hunyuan3DDiT`` denoiser, a ``ShapeVAE``, a ``SingleImageEncoder`` whose DINOv2 is given as
a config dict (so nothing downloads), the flow-matching Euler scheduler and
``ImageProcessorV2``. The sizes are cut down until the folder is a few hundred kB; hy3dgen's own
``from_pretrained`` loads it. Needs torch, safetensors, pyyaml and hy3dgen.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

SUBFOLDER = "hunyuan3d-dit-v2-0"
HIDDEN, HEADS, LATENT_CHANNELS, IMAGE_SIZE = 32, 2, 8, 28

CONFIG: dict[str, Any] = {
    "model": {
        "target": "hy3dgen.shapegen.models.Hunyuan3DDiT",
        "params": {
            "in_channels": LATENT_CHANNELS,
            "context_in_dim": HIDDEN,
            "hidden_size": HIDDEN,
            "mlp_ratio": 2.0,
            "num_heads": HEADS,
            "depth": 1,
            "depth_single_blocks": 1,
            "axes_dim": [HIDDEN // HEADS],
            "theta": 10000,
            "qkv_bias": True,
        },
    },
    "vae": {
        "target": "hy3dgen.shapegen.models.ShapeVAE",
        "params": {
            "num_latents": 16,
            "embed_dim": LATENT_CHANNELS,
            "num_freqs": 4,
            "include_pi": False,
            "heads": 2,
            "width": 32,
            "num_decoder_layers": 1,
            "qkv_bias": False,
            "qk_norm": True,
            "scale_factor": 1.0,
        },
    },
    "conditioner": {
        "target": "hy3dgen.shapegen.models.SingleImageEncoder",
        "params": {
            "main_image_encoder": {
                "type": "DinoImageEncoder",
                "kwargs": {
                    "config": {
                        "hidden_size": HIDDEN,
                        "num_hidden_layers": 1,
                        "num_attention_heads": 2,
                        "intermediate_size": 64,
                        "image_size": IMAGE_SIZE,
                        "patch_size": 14,
                        "layerscale_value": 1.0,
                    },
                    "image_size": IMAGE_SIZE,
                    "use_cls_token": True,
                },
            }
        },
    },
    "scheduler": {
        "target": "hy3dgen.shapegen.schedulers.FlowMatchEulerDiscreteScheduler",
        "params": {"num_train_timesteps": 1000},
    },
    "image_processor": {
        "target": "hy3dgen.shapegen.preprocessors.ImageProcessorV2",
        "params": {"size": 64, "border_ratio": 0.15},
    },
}


MV_SUBFOLDER = "hunyuan3d-dit-v2-mv"


def multiview_config() -> dict[str, Any]:
    """Hunyuan3D-2mv's layout (``hunyuan3d-dit-v2-mv``): the image encoder is DINOv2 with a
    per-view embedding (``DinoImageEncoderMV``, four views) and the processor takes a dict of
    views (``MVImageProcessorV2``); the rest as 2.0."""
    config = copy.deepcopy(CONFIG)
    encoder = config["conditioner"]["params"]["main_image_encoder"]
    encoder["type"] = "DinoImageEncoderMV"
    encoder["kwargs"]["view_num"] = 4
    config["image_processor"]["target"] = "hy3dgen.shapegen.preprocessors.MVImageProcessorV2"
    return config


def build_tiny_hunyuan(root: Path, seed: int = 0, multiview: bool = False) -> Path:
    """Write ``root/<SUBFOLDER>/{config.yaml, model.fp16.safetensors}`` (``MV_SUBFOLDER`` for
    the multi-view layout); returns ``root``.

    The weights are the modules' own random initialisation under ``seed``, stored with
    upstream's flat ``model.*``, ``vae.*`` and ``conditioner.*`` keys (in fp32: the CPU runs
    fp32, and the file name keeps upstream's variant).
    """
    import safetensors.torch
    import torch
    import yaml
    from hy3dgen.shapegen.pipelines import instantiate_from_config

    config = multiview_config() if multiview else CONFIG
    folder = root / (MV_SUBFOLDER if multiview else SUBFOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.manual_seed(seed)
    tensors: dict[str, Any] = {}
    for part in ("model", "vae", "conditioner"):
        module = instantiate_from_config(config[part])
        for key, value in module.state_dict().items():
            tensors[f"{part}.{key}"] = value.detach().clone().contiguous()
    safetensors.torch.save_file(tensors, str(folder / "model.fp16.safetensors"))
    return root
