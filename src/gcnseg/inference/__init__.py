"""Inference and deployment: prediction, ONNX export and the ONNX Runtime engine."""
