"""Typed Cython kernels (float32 and float64, GIL released, OpenMP) and their numpy twins."""
