"""Benchmarks: kernels and models on a device (torch users only; imports nothing at package import)."""
