"""Scenario models: field validation that the generic schema checks do not cover."""
import pytest
from pydantic import ValidationError

from simulator.config.scenario import Deployment


def test_engine_version_read_as_number_says_to_quote_it():
    """``--set deployment.engine_version=0.10`` arrives as the float 0.1: the error says to quote it."""
    with pytest.raises(ValidationError, match="quote it"):
        Deployment(engine="vllm", engine_version=0.1)
    assert Deployment(engine="vllm", engine_version="0.22.0").engine_version == "0.22.0"
