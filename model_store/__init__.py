"""Model store: versioned ONNX models, the atomic `current` pointer and the ONNX Runtime classifier."""
