"""`--notify URL|sns:TOPIC_ARN`: one short message when a scan or a merge has judged.

The message holds the verdict, the counts by severity, the first three fix-first actions
and where the reports are: enough to decide whether to open them, nothing more.

What never goes in it:
* **secrets**: the text is built from the already-redacted report document and redacted
  again as a whole (`rdsaudit.redact`); a webhook URL is itself a secret (Slack's carries
  its token in the path), so it is remembered as one and named by its host alone.
* **tags**, which anyone allowed to tag a database controls: no tag is read here.
* **names that are not plain AWS identifiers**: an action's title embeds resource names
  (DB identifiers, key aliases), which AWS restricts to letters, digits and `-_/:`
  (docs/aws-facts.md §17) but a hostile or broken answer need not. A title is sent only
  if every character is in that set plus our own words' spaces and punctuation, so no
  Slack mention (`<!channel>`), link (`<https://…|…>`), markup or control character can
  come from AWS data; otherwise the line says the name was withheld. Account ids and
  Regions are sent only when they have AWS's shape.

Delivery: a webhook is one HTTPS POST of JSON (Slack's `{"text": …}` plus a `rdsaudit`
object with the same facts as fields), one attempt, a timeout, no redirect followed; plain
http:// is refused except to 127.0.0.1 / localhost (a local relay, the tests). SNS is one
`sns:Publish` with `MessageStructure=json`: e-mail and SMS subscribers get the text, SQS,
Lambda and HTTP(S) subscribers the JSON. A failure is a report error (exit 3).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3

from rdsaudit import __version__
from rdsaudit.arns import Arn
from rdsaudit.collect.clients import AwsClients
from rdsaudit.collect.failures import AWS_FAILURES, describe_failure
from rdsaudit.collect.readonly import OPT_IN_WRITES
from rdsaudit.errors import UsageProblem
from rdsaudit.model import CollectionError
from rdsaudit.redact import redact, remember_credentials
from rdsaudit.report.contract import ReportDocument

TOP_ACTIONS = 3
DEFAULT_TIMEOUT = 10.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SNS_PREFIX = "sns:"
# SNS: a Subject has no line breaks or control characters and is under 100 characters
# (docs/aws-facts.md §17); ours is printable ASCII.
SUBJECT_MAX = 99
# Our own titles' words and punctuation plus the characters AWS allows in the names they
# embed (DB and snapshot identifiers, key ids, alias names).
_SAFE_TITLE = re.compile(r"[A-Za-z0-9 ,:;()/_'-]{1,200}")
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,256}(\.fifo)?")

NotifyOn = Literal["always", "fail"]


class NotifyProblem(UsageProblem, ValueError):
    """A --notify value that cannot be used (exit 2)."""


@dataclass(frozen=True)
class Target:
    kind: Literal["webhook", "sns"]
    address: str  # the URL, or the topic ARN

    @property
    def shown(self) -> str:
        """How the target is named in errors and on stderr: a webhook by scheme and host
        (its path may be its token), a topic by its ARN."""
        if self.kind == "sns":
            return self.address
        parts = urlsplit(self.address)  # no user or password: netloc is host[:port]
        return f"{parts.scheme}://{parts.netloc}/…"


def parse_target(text: str) -> Target:
    if text.startswith(SNS_PREFIX):
        arn = Arn.parse(text[len(SNS_PREFIX):])
        if (arn is None or arn.service != "sns" or not arn.region or not arn.account
                or not _TOPIC.fullmatch(arn.resource)):
            raise NotifyProblem(f"--notify {text[:80]!r}: not sns:arn:PARTITION:sns:REGION:"
                                "ACCOUNT:TOPIC")
        return Target("sns", str(arn))
    if not text.isascii() or not text.isprintable() or " " in text:
        raise NotifyProblem("--notify: the URL holds a space, a control or a non-ASCII "
                            "character (percent-encode it)")
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise NotifyProblem("--notify takes an https:// URL or sns:TOPIC_ARN")
    if parts.username is not None or parts.password is not None:
        raise NotifyProblem("--notify: no user or password in the URL (put the token in "
                            "the path, as webhooks do)")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise NotifyProblem("--notify: plain http:// only to 127.0.0.1 or localhost; use "
                            "https://")
    remember_credentials(text)  # the whole URL is as secret as a token
    return Target("webhook", text)


def should_send(doc: ReportDocument, on: NotifyOn) -> bool:
    """`fail`: only when the gate says the run is not clean: an unwaived failure at or
    above --fail-on (exit 1) or an incomplete scan (exit 3), --exit-zero or not."""
    return on == "always" or doc["summary"]["exit_code"] != 0


# -- the message ------------------------------------------------------------------------------


def _plain(text: object, pattern: re.Pattern[str]) -> str | None:
    return text if isinstance(text, str) and pattern.fullmatch(text) else None


def message(doc: ReportDocument, location: str) -> dict[str, Any]:
    """The webhook body: Slack's `text` and the same facts as fields, all redacted."""
    summary = doc["summary"]
    severities = summary["failures_by_severity"]
    actions: list[dict[str, Any]] = []
    lines: list[str] = []
    for action in summary["actions"][:TOP_ACTIONS]:
        title = _plain(action["title"], _SAFE_TITLE) or (
            f"a {action['kind']} action (its name is withheld: not a plain AWS identifier, "
            "or too long)")
        account = _plain(action["account_id"], _ACCOUNT)
        region = _plain(action["region"], _REGION)
        where = " ".join(p for p in (account, region) if p)
        count = len(action["resources"])
        actions.append({"urgency": action["urgency"], "severity": action["severity"],
                        "title": title, "deadline": action["deadline"],
                        "days_left": action["days_left"], "account_id": account,
                        "region": region, "resources": count})
        deadline = f", deadline {action['deadline'][:10]}" if action["deadline"] else ""
        lines.append(f"{action['urgency']}. [{action['severity']}] {title} ({count} "
                     f"resource{'s' if count != 1 else ''}{', ' + where if where else ''}"
                     f"{deadline})")
    more = len(summary["actions"]) - len(actions)
    counts = ", ".join(f"{n} {s}" for s, n in severities.items() if n) or "none"
    scan = doc["scan"]
    head = [f"rdsaudit: {summary['verdict']}",
            f"Failing: {counts} · {summary['resources_total']} resources in "
            f"{len(scan['accounts'])} account(s), {len(scan['regions'])} region(s) · "
            f"{summary['errors']} error(s) · exit {summary['exit_code']}"]
    if lines:
        head.append("Fix first:")
    tail = [f"… and {more} more action(s) in the report"] if more > 0 else []
    text = "\n".join([*head, *lines, *tail, f"Report: {location}"])
    fields = {"version": __version__, "verdict": summary["verdict"],
              "exit_code": summary["exit_code"], "complete": summary["complete"],
              "failures_by_severity": dict(severities), "errors": summary["errors"],
              "resources": summary["resources_total"], "accounts": len(scan["accounts"]),
              "regions": len(scan["regions"]), "actions": actions, "more_actions": max(more, 0),
              "report": location, "finished_at": scan["finished_at"]}
    # Slack: mrkdwn off, so nothing in the text is formatting.
    body: dict[str, Any] = json.loads(redact(json.dumps(
        {"text": text, "mrkdwn": False, "rdsaudit": fields})))
    return body


# -- sending ----------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the error it then is


def post(url: str, body: bytes, timeout: float) -> None:
    """One POST; raises `urllib.error.URLError` / `OSError` / `_Refused` on failure."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(  # noqa: S310 - parse_target allows http(s) only
        url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"rdsaudit/{__version__}"})
    with opener.open(request, timeout=timeout) as answer:
        answer.read(64 * 1024)


def _http_failure(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, urllib.error.HTTPError):
        raw = exc.read(200) if exc.fp is not None else b""
        said = "".join(c for c in raw.decode("utf-8", "replace") if c.isprintable())[:100]
        return f"HTTP{exc.code}", f"the endpoint answered {exc.code}" + (
            f": {said}" if said else "")
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
        return "Timeout", "no answer within the timeout"
    if isinstance(reason, ConnectionRefusedError):
        return "ConnectionRefused", "connection refused"
    return type(reason).__name__, str(reason)[:200]


def send_webhook(target: Target, body: Mapping[str, Any],
                 timeout: float) -> list[CollectionError]:
    data = json.dumps(body).encode()
    try:
        post(target.address, data, timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        code, text = _http_failure(exc)
        return [CollectionError("", "", "notify", "POST", code,
                                redact(f"{target.shown}: {text}"), target.shown)]
    return []


def send_sns(session: boto3.Session, target: Target,
             body: Mapping[str, Any]) -> list[CollectionError]:
    arn = Arn.parse(target.address)
    assert arn is not None
    clients = AwsClients(session, max_attempts=5,
                         allowed_writes=OPT_IN_WRITES["--notify sns:"])
    text = str(body["text"])
    structured = json.dumps(body)
    params: dict[str, Any] = {
        "TopicArn": target.address, "MessageStructure": "json",
        "Message": json.dumps({"default": text, "email": text, "sms": text[:140],
                               "sqs": structured, "lambda": structured,
                               "http": structured, "https": structured}),
        "Subject": _subject(text)}
    if arn.resource.endswith(".fifo"):
        # FIFO topics need a group and, without content-based deduplication, an id: the
        # same report notified twice is one message.
        params.update(MessageGroupId="rdsaudit", MessageDeduplicationId=hashlib.sha256(
            structured.encode()).hexdigest())
    try:
        clients.call("sns", arn.region, "Publish", "publish", **params)
    except AWS_FAILURES as exc:
        failure = describe_failure(exc)
        return [CollectionError(arn.account, arn.region, "sns", "Publish", failure.code,
                                failure.message, target.address)]
    return []


def _subject(text: str) -> str:
    first = text.splitlines()[0] if text else "rdsaudit"
    ascii_only = "".join(c if " " <= c <= "~" else "-" for c in first)
    return ascii_only[:SUBJECT_MAX].rstrip()


def notifier(targets: Sequence[Target], on: NotifyOn, location: Callable[[], str],
             session: Callable[[], boto3.Session], timeout: float = DEFAULT_TIMEOUT,
             report: Callable[[str], None] | None = None,
             ) -> Callable[[ReportDocument], list[CollectionError]]:
    """The delivery `Outputs.deliveries` runs last: what failed, as report errors."""

    def deliver(doc: ReportDocument) -> list[CollectionError]:
        if not should_send(doc, on):
            return []
        body = message(doc, location())
        errors: list[CollectionError] = []
        for target in targets:
            failed = (send_sns(session(), target, body) if target.kind == "sns"
                      else send_webhook(target, body, timeout))
            errors += failed
            if report is not None:
                report(f"rdsaudit: notify {target.shown}: "
                       + ("failed" if failed else "sent"))
        return errors

    return deliver


def iam_statements(targets: Sequence[Target]) -> list[dict[str, Any]]:
    """What `iam-policy --notify sns:…` adds: Publish on those topics alone. A webhook needs
    no AWS permission. A topic encrypted with a customer key also needs kms:GenerateDataKey*
    and kms:Decrypt on that key (docs/aws-facts.md §17), which the topic ARN does not name."""
    topics = sorted({t.address for t in targets if t.kind == "sns"})
    if not topics:
        return []
    return [{"Sid": "RdsauditNotify", "Effect": "Allow", "Action": ["sns:Publish"],
             "Resource": topics}]
