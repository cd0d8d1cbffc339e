"""A tiny ONNX segmentation model shaped like rembg's U2-Net, built by the tests.

Input ``input`` : (1, 3, 320, 320) float32, output ``mask`` : (1, 1, 320, 320) float32, as
rembg's ``u2net`` and ``u2net_custom`` sessions feed and read them. One 1 x 1 convolution scores
each pixel by how red it is (red minus the mean of green and blue) and a sigmoid makes that a
sharp mask, so a red object on a green/blue background is foreground however busy the background
is. A few hundred bytes on disk; onnxruntime loads it. Needs the ``onnx`` package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIDE = 320
# rembg normalises each channel c as (v / max(v) - MEAN[c]) / STD[c] (ImageNet statistics); the
# weights undo that, so the convolution sees the plain 0-1 channel values.
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
# A pixel is foreground when red exceeds the mean of green and blue by THRESHOLD (in 0-1 units);
# GAIN sets how steeply the sigmoid goes from background to foreground around it.
THRESHOLD, GAIN = 0.35, 30.0
# Opset 17 and IR version 8 (ONNX 1.12): old enough for any onnxruntime of the last years.
OPSET, IR_VERSION = 17, 8


def build_tiny_segmenter(path: Path) -> Path:
    """Write the model to ``path`` (parent folders created); returns ``path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    redness = np.array([1.0, -0.5, -0.5])  # red minus the mean of green and blue
    weight = (GAIN * redness * STD).reshape(1, 3, 1, 1).astype(np.float32)
    bias = np.array([GAIN * (redness @ MEAN - THRESHOLD)], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "weight", "bias"], ["score"], kernel_shape=[1, 1]),
            helper.make_node("Sigmoid", ["score"], ["mask"]),
        ],
        "tiny_segmenter",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, SIDE, SIDE])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sweedle-tests"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
