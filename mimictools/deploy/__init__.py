"""Deployment: ONNX export of a trained policy with its contract, and a dependency-light reference runner."""
