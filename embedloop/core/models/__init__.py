"""Model versions: the registry, version folders (export, int8, checksums), the ONNX encoder, promotion."""
