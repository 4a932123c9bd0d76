"""Inference and deployment: the Segmenter, its engines, prediction, ONNX export and int8.

Only names live here, so the CLI can list the engines without importing torch.
"""

AUTO = "auto"  # the fastest accurate engine installed (see engines.choose)
TORCH = "torch"  # torch, with bf16 autocast where the CPU computes bf16 natively
TORCH_FP32 = "torch-fp32"
TORCH_BF16 = "torch-bf16"
ONNX = "onnx"  # ONNX Runtime, fp32
ONNX_INT8 = "onnx-int8"  # ONNX Runtime on a file written by `gcnseg export --int8`
OPENVINO = "openvino"  # OpenVINO, bf16 where the CPU has it
ENGINES = (AUTO, TORCH, TORCH_FP32, TORCH_BF16, ONNX, ONNX_INT8, OPENVINO)
ONNX_FILE_ENGINES = (AUTO, ONNX, ONNX_INT8, OPENVINO)  # what can run an exported .onnx file
