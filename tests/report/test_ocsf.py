"""`--format ocsf`: every event validates against the published OCSF models (py-ocsf-models).

The models ignore unknown keys, so a misspelt attribute would pass a plain validation: each
event must also equal the model's own dump of it (nothing dropped, nothing coerced). The
`cloud` attribute belongs to OCSF's cloud profile, which the Compliance Finding model does
not carry: it is validated with the published Cloud model the same way.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.objects.cloud import Cloud
from pydantic import BaseModel

from rdsaudit.model import finding_id
from rdsaudit.report.ocsf import ocsf_events, render_ocsf
from tests.report.test_formats import sample_document


def _same_as_model(model: type[BaseModel], data: dict[str, Any]) -> None:
    parsed = model.model_validate(data)
    assert parsed.model_dump(mode="json", exclude_unset=True) == data


def validate(event: dict[str, Any]) -> None:
    body = dict(event)
    cloud = body.pop("cloud")
    assert "cloud" in body["metadata"]["profiles"]
    _same_as_model(ComplianceFinding, body)
    _same_as_model(Cloud, cloud)


def test_every_event_validates_against_the_published_models() -> None:
    doc = sample_document()
    events = json.loads(render_ocsf(doc))
    expected = [f for f in doc["findings"] if f["status"] in ("fail", "waived")]
    assert len(events) == len(expected) >= 7
    for event, finding in zip(events, expected, strict=True):
        validate(event)
        r = finding["resource"]
        assert event["class_uid"] == 2003 and event["type_uid"] == 200301
        assert event["finding_info"]["uid"] == finding_id(r["account_id"], r["region"],
                                                          finding["rule_id"], r["arn"])
        assert event["compliance"]["control"] == finding["rule_id"]
        assert event["compliance"]["status_id"] == 3  # Fail (waived still fails)
        assert event["cloud"]["account"]["uid"] == r["account_id"]
        assert event["cloud"]["region"] == r["region"]
        assert event["resources"][0]["uid"] == r["arn"]
        assert event["metadata"]["product"]["name"] == "rdsaudit"
    waived = [e for e in events if e["status"] == "Suppressed"]
    assert len(waived) == 1


def test_passes_only_with_full_evidence() -> None:
    doc = sample_document()
    doc["findings"] = [*doc["findings"], {**doc["findings"][0], "status": "pass"}]
    passing = sum(f["status"] == "pass" for f in doc["findings"])
    assert passing and len(ocsf_events(doc)) == len(doc["findings"]) - passing
    doc["scan"]["evidence"] = "full"
    events = ocsf_events(doc)
    assert len(events) == len(doc["findings"])
    for event in events:
        validate(event)
    assert {e["compliance"]["status_id"] for e in events if e["status"] == "Resolved"} == {1}


@pytest.mark.parametrize("path", [("finding_info", "titel"), ("compliance", "contrl"),
                                  ("cloud", "acount"), ("metadata", "prodct")])
def test_a_misspelt_attribute_fails_validation(path: tuple[str, str]) -> None:
    event = copy.deepcopy(ocsf_events(sample_document())[0])
    event[path[0]][path[1]] = "x"
    with pytest.raises(AssertionError):
        validate(event)


def test_no_findings_is_an_empty_array() -> None:
    doc = sample_document()
    doc["findings"] = []
    assert json.loads(render_ocsf(doc)) == []
