"""Test support: reference models, the pipeline-eval simulation, shared factories."""
