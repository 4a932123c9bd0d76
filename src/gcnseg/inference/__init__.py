"""Inference and deployment: the Segmenter, its engines, prediction, ONNX export and int8.

Only names live here, so the CLI can list the engines without importing torch.
"""

ENGINES = ("auto", "torch", "torch-fp32", "torch-bf16", "onnx", "onnx-int8", "openvino")
