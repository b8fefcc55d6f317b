"""schemathesis against the app's own /openapi.json: no 5xx, and no response the document does not describe.

In-process over WSGI (the real app, the suite's redis-server, the simulator over HTTP), with a bounded,
derandomized number of examples per operation, so every run tries the same inputs.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.app import CLIENT_KEY

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 30
SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def operations(app) -> list:
    """Every operation of the document the app serves, bound to that app over WSGI."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
def test_every_operation_answers_as_documented(app):
    found = operations(app)
    assert {op.path for op in found} >= {"/request-code", "/verify", "/verifications/{verification_id}",
                                         "/healthz", "/readyz", "/metrics"}
    failures = []
    for operation in found:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):  # valid inputs, then invalid ones
            @given(case=operation.as_strategy(generation_mode=mode))
            @SETTINGS
            def run(case):
                case.call_and_validate(checks=CHECKS, headers={"Authorization": f"Bearer {CLIENT_KEY}"})

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no parameter or body to get wrong (GET /healthz)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 (schemathesis raises a BaseExceptionGroup of failures)
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
