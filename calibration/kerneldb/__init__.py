"""Fit servesim's kernel efficiency from the measured kernel databases of vLLM, SGLang and TensorRT-LLM.

The tables come from the PyPI package ``aiconfigurator-core`` (Apache-2.0), read at fit time only:
``source`` finds and reads them, ``export`` writes them as our measurement CSVs, ``overlay`` fits
them with calibration/fit.py and builds ``hwprofiles/kernels/<gpu>/<engine>.yaml``, ``cli`` is
``python -m calibration.kerneldb``, ``compare`` sets them beside our own torch measurements.
"""
