"""GitHub's OpenAPI description as a response validator for the simulator.

`load_spec()` reads the description installed by npm (@octokit/openapi), converts its
OpenAPI 3.0 schemas to JSON Schema 2020-12 (`nullable: true` becomes a `null` alternative,
`discriminator` picks the mapped schema) and caches the result for the process.
`validate_response(spec, "/repos/{owner}/{repo}", "get", 200, body)` raises
`SchemaMismatch` listing every difference; `find_template(spec, "/repos/a/b")` maps a
concrete request path to the operation's path template, for validating live responses.

A few schemas in the published description disagree with what api.github.com sends;
SPEC_CORRECTIONS fixes them (each with the evidence) so that faithful output validates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = (Path(__file__).resolve().parents[2] / "node_modules" / "@octokit" / "openapi"
             / "generated" / "api.github.com.json")
BASE_URI = "urn:ghvault:openapi"
_DROP = {"nullable", "discriminator", "example", "examples", "externalDocs", "xml"}


def _nullable_fields(schema: str, *names: str) -> Callable[[dict], None]:
    def fix(schemas: dict) -> None:
        for name in names:
            schemas[schema]["properties"][name]["nullable"] = True
    return fix


# Issue events that carry only the fields every event has (GitHub's "issue event types").
PLAIN_EVENTS = (
    "closed", "reopened", "merged", "referenced", "mentioned", "subscribed", "unsubscribed",
    "head_ref_deleted", "head_ref_restored", "head_ref_force_pushed", "base_ref_changed",
    "base_ref_force_pushed", "ready_for_review", "convert_to_draft", "unlocked", "pinned",
    "unpinned", "transferred", "marked_as_duplicate", "unmarked_as_duplicate", "connected",
    "disconnected", "comment_deleted", "deployed", "deployment_environment_changed",
    "auto_merge_enabled", "auto_merge_disabled", "auto_squash_enabled", "auto_rebase_enabled",
    "automatic_base_change_succeeded", "automatic_base_change_failed", "user_blocked",
)


def _add_plain_events(schemas: dict) -> None:
    schemas["issue-event-for-issue"]["anyOf"].append({"allOf": [
        {"$ref": "#/components/schemas/state-change-issue-event"},
        {"properties": {"event": {"type": "string", "enum": list(PLAIN_EVENTS)}}},
    ]})


def _gist_language_nullable(schemas: dict) -> None:
    for name in ("base-gist", "gist-simple"):
        schemas[name]["properties"]["files"]["additionalProperties"]["properties"][
            "language"]["nullable"] = True


# Known inaccuracies of the published description (applied to components/schemas).
SPEC_CORRECTIONS: dict[str, Callable[[dict], None]] = {
    # github/rest-api-description#2507 and #7058: GET /orgs/{org} sends null for these
    # (e.g. /orgs/github: "company": null, "email": null); the schema says string.
    "organization-full nullable contact fields": _nullable_fields(
        "organization-full", "company", "email", "blog", "location"),
    # GET /repos/{o}/{r}/issues/{n}/events also returns events that carry only the common
    # fields (closed, reopened, merged, referenced, head_ref_deleted, ...). The anyOf lists
    # only events with a payload; the timeline's state-change-issue-event is their shape
    # (admitted here for PLAIN_EVENTS only, so other events still need their own schema).
    "issue-event-for-issue plain events": _add_plain_events,
    # Gist files GitHub cannot classify (no or unknown extension) have "language": null.
    "gist file language nullable": _gist_language_nullable,
}


# format checks ------------------------------------------------------------------------

FORMATS = FormatChecker(formats=())
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@FORMATS.checks("date")
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(re.match(r"^\d{4}-\d{2}-\d{2}$", value))


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if any(c in value for c in " {}<>\"\\"):
        return False
    parts = urlsplit(value)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme in ("mailto", "urn"))


@FORMATS.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or bool(_EMAIL.match(value))


# conversion ---------------------------------------------------------------------------

def to_json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema 2020-12 (refs point into BASE_URI)."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP or key.startswith("x-"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
            out[key] = BASE_URI + value
        elif key == "properties":
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    disc = schema.get("discriminator")
    if disc and disc.get("mapping") and "oneOf" in out:
        prop, mapping = disc["propertyName"], disc["mapping"]
        picks = [{"if": {"properties": {prop: {"const": k}}},
                  "then": {"$ref": BASE_URI + v if v.startswith("#/") else v}}
                 for k, v in mapping.items()]
        out = {k: v for k, v in out.items() if k != "oneOf"}
        out["if"] = {"properties": {prop: {"enum": list(mapping)}}, "required": [prop]}
        out["then"] = {"allOf": picks}
        out["else"] = {"oneOf": to_json_schema(schema["oneOf"])}
    if schema.get("nullable"):
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        composed = any(k in out for k in ("allOf", "anyOf", "oneOf", "$ref", "if"))
        if "type" in out and not composed:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


def _media_type(content_type: str) -> str:
    """Comparable media type: no parameters, no API version; GitHub's generic
    application/vnd.github+json is answered as application/json."""
    media = content_type.split(";", 1)[0].strip().lower().replace(".v3", "")
    return "application/json" if media == "application/vnd.github+json" else media


@dataclass
class Spec:
    """The loaded description: `raw` is the OpenAPI document (with SPEC_CORRECTIONS
    applied unless loaded with corrections=False), `schemas` its components/schemas as
    JSON Schema, `registry` resolves their $refs (under BASE_URI)."""

    raw: dict
    schemas: dict[str, Any]
    registry: Registry
    corrections: tuple[str, ...]
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict, repr=False)
    _resolved: dict[str, Any] = field(default_factory=dict, repr=False)
    _responses: dict[str, dict] = field(default_factory=dict, repr=False)

    def operation(self, path: str, method: str) -> dict:
        try:
            return self.raw["paths"][path][method.lower()]
        except KeyError:
            raise KeyError(f"no operation {method.upper()} {path} in the description") from None

    def response_schema(self, path: str, method: str, status: int | str = 200,
                        content_type: str = "application/json") -> dict:
        """The converted JSON Schema of one operation's response body."""
        responses = self.operation(path, method)["responses"]
        key = str(status)
        resp = responses.get(key) or responses.get(f"{key[0]}XX") or responses.get("default")
        if resp is None:
            raise KeyError(f"{method.upper()} {path} documents no {status} response "
                           f"(has {', '.join(responses)})")
        if "$ref" in resp:
            resp = self.raw["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
        content = resp.get("content") or {}
        media = next((m for ct, m in content.items()
                      if _media_type(ct) == _media_type(content_type)), None)
        if media is None:
            raise KeyError(f"{method.upper()} {path} {status} has no {content_type} body "
                           f"(has {', '.join(content) or 'none'})")
        cache_key = f"{method.lower()} {path} {status} {_media_type(content_type)}"
        if cache_key not in self._responses:
            self._responses[cache_key] = to_json_schema(media["schema"])
        return self._responses[cache_key]

    def validator(self, schema: dict) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            v = Draft202012Validator(schema, registry=self.registry, format_checker=FORMATS)
            self._validators[key] = v
        return v

    def component(self, name: str) -> dict:
        if name not in self.schemas:
            raise KeyError(f"no schema {name!r} in components/schemas")
        return {"$ref": f"{BASE_URI}#/components/schemas/{name}"}


@cache
def _load(path: str, corrections: bool) -> Spec:
    raw = json.loads(Path(path).read_text())
    originals = raw["components"]["schemas"]
    applied: tuple[str, ...] = ()
    if corrections:  # in place: this document is private to the cache entry
        for fix in SPEC_CORRECTIONS.values():
            fix(originals)
        applied = tuple(SPEC_CORRECTIONS)
    schemas = {name: to_json_schema(s) for name, s in originals.items()}
    doc = {"$id": BASE_URI, "components": {"schemas": schemas}}
    registry = Registry().with_resource(BASE_URI, Resource(contents=doc, specification=DRAFT202012))
    return Spec(raw=raw, schemas=schemas, registry=registry, corrections=applied)


def load_spec(path: Path | str | None = None, corrections: bool = True) -> Spec:
    """The description (cached per path): GitHub's api.github.com by default."""
    return _load(str(Path(path or SPEC_PATH).resolve()), corrections)


# validation ---------------------------------------------------------------------------

class SchemaMismatch(AssertionError):
    """A body that does not match its documented schema; `errors` lists every problem."""

    def __init__(self, what: str, errors: list[str]):
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"{what}: {len(errors)} schema error(s)\n{lines}")


def _describe(err: ValidationError, depth: int = 0) -> list[str]:
    where = err.json_path
    value = json.dumps(err.instance, default=str)
    if len(value) > 80:
        value = value[:77] + "..."
    schema_at = "/".join(str(p) for p in err.relative_schema_path)
    line = f"{where}: {err.message if len(err.message) < 200 else err.message[:197] + '...'}"
    out = [("    " * depth) + line + ("" if err.context else f"  [value {value}; {schema_at}]")]
    if err.context and depth < 3:
        # anyOf/oneOf: show the alternative that came closest (got deepest, fewest errors).
        branches: dict[Any, list[ValidationError]] = {}
        for sub in err.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        best = min(branches.values(), key=lambda errs: (
            -max(len(e.absolute_path) for e in errs), len(errs)))
        which = best[0].relative_schema_path[0]
        out.append(("    " * (depth + 1)) + f"closest alternative #{which}:")
        for sub in best:
            out += _describe(sub, depth + 2)
    return out


def schema_errors(spec: Spec, schema: dict, body: Any, *, strict: bool = False,
                  allow_extra: Iterable[str] = ()) -> list[str]:
    """Every way `body` breaks `schema`, one readable line each (empty when it matches).

    With `strict`, object properties the schema does not document are errors too, except
    property names listed in `allow_extra` (GitHub sends a few undocumented fields)."""
    validator = spec.validator(schema)
    errors = sorted(validator.iter_errors(body), key=lambda e: (list(map(str, e.path)),
                                                              e.message))
    out = ["\n    ".join(_describe(e)) for e in errors]
    if strict and not errors:
        out += _undocumented(spec, schema, body, "$", set(allow_extra))
    return out


def _resolve(spec: Spec, schema: dict) -> dict:
    while "$ref" in schema and len(schema) == 1:
        ref = schema["$ref"]
        if ref not in spec._resolved:
            spec._resolved[ref] = spec.registry.resolver().lookup(ref).contents
        schema = spec._resolved[ref]
    return schema


def _has_required(spec: Spec, schema: dict, body: Any) -> bool:
    """A cheap pre-check before a full validation: the body has the required keys."""
    required = _resolve(spec, schema).get("required", ())
    return not isinstance(body, dict) or all(k in body for k in required)


def _undocumented(spec: Spec, schema: Any, body: Any, where: str, allow: set[str]) -> list[str]:
    if not isinstance(schema, dict):
        return []
    schema = _resolve(spec, schema)
    out: list[str] = []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            alts = [a for a in schema[key] if a != {"type": "null"}]
            if body is None:
                return []
            if len(alts) == 1:  # a nullable wrapper
                return _undocumented(spec, alts[0], body, where, allow)
            # Judge by the matching alternative that documents the most of the body.
            found = [_undocumented(spec, alt, body, where, allow) for alt in alts
                     if _has_required(spec, alt, body) and spec.validator(alt).is_valid(body)]
            return min(found, key=len, default=[])
    if "if" in schema:
        branch = schema["then"] if spec.validator(schema["if"]).is_valid(body) else schema.get(
            "else")
        return _undocumented(spec, branch, body, where, allow)
    parts = [_resolve(spec, s) for s in schema.get("allOf", [])] + [schema]
    if isinstance(body, dict):
        props: dict[str, Any] = {}
        extra: Any = None
        for part in parts:
            props.update(part.get("properties") or {})
            if "additionalProperties" in part:
                extra = part["additionalProperties"]
        for k, v in body.items():
            if k in props:
                out += _undocumented(spec, props[k], v, f"{where}.{k}", allow)
            elif isinstance(extra, dict):
                out += _undocumented(spec, extra, v, f"{where}[{k!r}]", allow)
            elif extra is None and k not in allow and any("properties" in p for p in parts):
                out.append(f"{where}.{k}: property is not in the documented schema")
    elif isinstance(body, list):
        items = next((p["items"] for p in parts if "items" in p), None)
        for i, v in enumerate(body):
            out += _undocumented(spec, items, v, f"{where}[{i}]", allow)
    return out


# The component each issue event kind has (per-issue events / timeline items).
EVENT_SCHEMAS = {
    "labeled": "labeled-issue-event", "unlabeled": "unlabeled-issue-event",
    "assigned": "assigned-issue-event", "unassigned": "unassigned-issue-event",
    "milestoned": "milestoned-issue-event", "demilestoned": "demilestoned-issue-event",
    "renamed": "renamed-issue-event", "locked": "locked-issue-event",
    "review_requested": "review-requested-issue-event",
    "review_request_removed": "review-request-removed-issue-event",
    "review_dismissed": "review-dismissed-issue-event",
    **{e: "state-change-issue-event" for e in PLAIN_EVENTS},
}
TIMELINE_SCHEMAS = {
    **EVENT_SCHEMAS,
    "assigned": "timeline-assigned-issue-event", "unassigned": "timeline-unassigned-issue-event",
    "commented": "timeline-comment-event", "reviewed": "timeline-reviewed-event",
    "committed": "timeline-committed-event", "cross-referenced": "timeline-cross-referenced-event",
    "line-commented": "timeline-line-commented-event",
    "commit-commented": "timeline-commit-commented-event",
}


# Lists whose items the description types as an anyOf of every event kind; it accepts an
# item that any alternative accepts (some accept nearly anything), so validate_response
# also checks each item against the schema of its own kind. Value: timeline or not.
EVENT_LISTS = {
    "/repos/{owner}/{repo}/issues/{issue_number}/events": False,
    "/repos/{owner}/{repo}/issues/{issue_number}/timeline": True,
}


def _event_errors(spec: Spec, items: list, timeline: bool, strict: bool,
                  allow_extra: Iterable[str]) -> list[str]:
    out = []
    for k, item in enumerate(items):
        name = event_schema(str(item.get("event")), timeline) if isinstance(item, dict) else None
        if name is None:
            continue
        for e in schema_errors(spec, spec.component(name), item, strict=strict,
                               allow_extra=allow_extra):
            out.append(f"$[{k}]{e[1:]} (checked as {name})")
    return out


def event_schema(event: str, timeline: bool = False) -> str | None:
    """The component describing one kind of issue event (the spec's anyOf accepts an event
    that matches any alternative; validating against this one is the stricter check)."""
    return (TIMELINE_SCHEMAS if timeline else EVENT_SCHEMAS).get(event)


def validate_response(spec: Spec, path_template: str, method: str, status: int | str,
                      body: Any, content_type: str = "application/json", *,
                      strict: bool = False, allow_extra: Iterable[str] = ()) -> None:
    """Raise SchemaMismatch unless `body` matches the operation's documented response."""
    schema = spec.response_schema(path_template, method, status, content_type)
    errors = schema_errors(spec, schema, body, strict=strict, allow_extra=allow_extra)
    if path_template in EVENT_LISTS and isinstance(body, list):
        errors += _event_errors(spec, body, EVENT_LISTS[path_template], strict, allow_extra)
    if errors:
        raise SchemaMismatch(f"{method.upper()} {path_template} {status}", errors)


def validate_component(spec: Spec, name: str, body: Any, *, strict: bool = False,
                       allow_extra: Iterable[str] = ()) -> None:
    """Raise SchemaMismatch unless `body` matches components/schemas/`name`."""
    errors = schema_errors(spec, spec.component(name), body, strict=strict,
                           allow_extra=allow_extra)
    if errors:
        raise SchemaMismatch(f"schema {name}", errors)


def find_template(spec: Spec, path: str, method: str = "get") -> str:
    """The documented path template a concrete path (without the /api/v3 prefix) matches;
    literal segments win over parameters ("/repos/o/r/issues/comments" is the comments
    list, not issue "comments")."""
    segs = path.split("?", 1)[0].rstrip("/").split("/")
    best: tuple[int, str] | None = None
    for template, ops in spec.raw["paths"].items():
        if method.lower() not in ops:
            continue
        tsegs = template.split("/")
        if len(tsegs) != len(segs):
            continue
        score = 0
        for t, s in zip(tsegs, segs, strict=True):
            if t.startswith("{") and t.endswith("}"):
                if not s:
                    break
            elif t == s:
                score += 1
            else:
                break
        else:
            if best is None or score > best[0]:
                best = (score, template)
    if best is None:
        raise KeyError(f"no documented {method.upper()} operation matches {path}")
    return best[1]
