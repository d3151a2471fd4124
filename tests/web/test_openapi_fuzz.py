"""Schemathesis against the OpenAPI document, over HTTP to the real server (uvicorn on 127.0.0.1).

Every generated request, valid or not, must get a documented status and a response matching the
documented schema; no request may cause a 500. Runs as an ICB user, so the patient-level
operations are exercised past the access check.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from webkit import SECRET, WebWorld

from parity.settings import Settings
from parity.web import create_app

# The document does not depend on the data: build it from an app that is never started.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url=":memory:", secret_key=SECRET)).openapi())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, live_server: str, duckdb_world: WebWorld) -> None:  # noqa: ANN001
    # All of schemathesis's checks but one: a reporting date after today (or before 2000) is refused
    # with 400, a bound that depends on today and so cannot be written into the document.
    case.call_and_validate(base_url=live_server, excluded_checks=[positive_data_acceptance],
                           headers={"Authorization": f"Bearer {duckdb_world.tokens['icb1']}"})
