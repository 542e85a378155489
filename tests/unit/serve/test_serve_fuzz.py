"""Fuzz the server from its own OpenAPI schema (schemathesis): for every generated request -- valid ones
and deliberately invalid ones -- no 5xx, every status code documented, every answer shaped as documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from rewardkit.scoring import LengthScorer, RewardModelScorer
from rewardkit.serve.app import create_app
from rewardkit.serve.settings import ServeSettings

# The schema does not depend on the scorer: load it from a cheap app; the requests go to the fixture's app.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(LengthScorer()))
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def fuzzed_app(tiny_rms: dict[str, Path]) -> Any:
    """The chat-template model: generated text goes through the template, the tokenizer and the model."""
    return create_app(RewardModelScorer(str(tiny_rms["llama"])),
                      ServeSettings(max_items_per_request=16, max_body_bytes=64 * 1024))


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_input_makes_the_server_fail(case: Any, fuzzed_app: Any) -> None:
    case.call_and_validate(app=fuzzed_app,
                           checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
