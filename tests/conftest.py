"""Test-wide settings: property tests run with a fixed seed sequence in CI (reproducible runs),
and with fresh random examples on developers' machines (new cases keep being explored)."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
