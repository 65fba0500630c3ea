"""GPU calibration suite for servesim: measures real kernels (GEMM, attention, memory-bound ops,
launch overhead, NCCL collectives, whole Hugging Face models) and fits efficiency curves.

torch is imported lazily inside the measuring functions only; the CSV handling
(:mod:`simulator.calibration.io`), the shape grids (:mod:`simulator.calibration.shapes`) and the fit
(:mod:`simulator.calibration.fit`) work without it. Entry point: :func:`simulator.calibration.suite.main`.
"""
