"""Export: the per-frame streaming step as an ONNX graph with its state as explicit tensors, and
an onnxruntime engine that runs it."""
