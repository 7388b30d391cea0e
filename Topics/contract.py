#!/usr/bin/env python3
"""Checks Topics/asyncapi.yaml, Herald's event contract.

    python3 Topics/contract.py                  check the document; exit 1 on any problem
    python3 Topics/contract.py --emit-examples  also print every event example as JSON
    python3 Topics/contract.py --emit-cases     also print the accept/reject cases as JSON
    python3 Topics/contract.py --validate-published FILE
                                                also validate records Herald published (a JSON
                                                array of {"topic", "headers", "payload"}) against
                                                the messages of the channel they were sent to

Checks that the document is structurally AsyncAPI 3.0.0 (channels, operations and every
$ref resolve; operation messages belong to their channel), that every schema is valid
for its dialect, that every example validates against its message's headers and payload
schemas, and that a set of generated cases (good and bad values for each field, and
deliberately invalid payloads: a missing required field, a malformed email, a header
injection...) get the verdict written next to them. Each payload is checked with the
validator of the schema's dialect and again with draft 2020-12's, which must agree.

--emit-examples prints a JSON array with one object per example of an event Herald
consumes: {"topic", "event_type", "headers", "payload", "value"}, where "value" is the
payload serialised as a producer would send it. --emit-cases prints the generated cases
in the same shape plus "expect" ("accept" or "reject") and "why". Herald's unit tests
decode both with Herald's own decoder, so the schemas and Herald agree.

Needs only PyYAML and jsonschema (Debian: python3-yaml, python3-jsonschema).
"""

import copy
import json
import pathlib
import re
import sys

try:
    import yaml
    import jsonschema
except ImportError as error:  # pragma: no cover
    sys.exit(f"contract.py: {error} (install python3-yaml and python3-jsonschema)")

DOCUMENT = pathlib.Path(__file__).resolve().parent / "asyncapi.yaml"
BASE_URI = DOCUMENT.as_uri()

# Topics Herald publishes its own events to (besides dead letters), by their default names.
OWN_TOPICS = ("herald.mail.events",)

# Fields every event may carry; the catalogue's own fields are everything else.
ENVELOPE_FIELDS = ("event_type", "type", "event_id", "id", "occurred_at", "event_timestamp", "created_at")


class ContractError(Exception):
    pass


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")

    def __bool__(self):
        return bool(self.items)


# ---------------------------------------------------------------------------------------
# Loading and references

class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ContractError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=UniqueKeyLoader)
    except (OSError, yaml.YAMLError) as error:
        raise ContractError(f"cannot read {path}: {error}") from error


def pointer(doc, ref):
    """Resolves a local reference '#/a/b' (JSON Pointer, RFC 6901)."""
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise ContractError(f"only local references are supported, found {ref!r}")
    node = doc
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ContractError(f"reference {ref} does not resolve")
    return node


def deref(doc, node):
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise ContractError(f"reference cycle through {ref}")
        seen.add(ref)
        node = pointer(doc, ref)
    return node


def all_refs(node, path="#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from all_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from all_refs(value, f"{path}/{i}")


# ---------------------------------------------------------------------------------------
# Structure

def check_structure(doc, problems):
    if not isinstance(doc, dict):
        raise ContractError("the document is not a mapping")
    if doc.get("asyncapi") != "3.0.0":
        problems.add("asyncapi", f"expected '3.0.0', found {doc.get('asyncapi')!r}")
    info = doc.get("info")
    if not isinstance(info, dict) or not info.get("title") or not info.get("version"):
        problems.add("info", "title and version are required")
    unresolved = 0
    for path, ref in all_refs(doc):
        try:
            pointer(doc, ref)
        except ContractError as error:
            problems.add(path, str(error))
            unresolved += 1
    if unresolved:
        raise ContractError(f"{unresolved} reference(s) do not resolve")

    channels = doc.get("channels")
    operations = doc.get("operations")
    if not isinstance(channels, dict) or not channels:
        raise ContractError("channels: expected a non-empty mapping")
    if not isinstance(operations, dict) or not operations:
        raise ContractError("operations: expected a non-empty mapping")

    for name, channel in channels.items():
        channel = deref(doc, channel)
        where = f"channels.{name}"
        if not isinstance(channel.get("address"), str) or not channel["address"]:
            problems.add(where, "address is required (a Kafka topic)")
        messages = channel.get("messages")
        if not isinstance(messages, dict) or not messages:
            problems.add(where, "messages: expected a non-empty mapping")
            continue
        kafka = (channel.get("bindings") or {}).get("kafka")
        if kafka is not None and kafka.get("topic") not in (None, channel.get("address")):
            problems.add(where, f"kafka binding topic {kafka.get('topic')!r} differs from the address")
        for key, message in messages.items():
            message = deref(doc, message)
            if not isinstance(message, dict) or "payload" not in message:
                problems.add(f"{where}.messages.{key}", "a message needs a payload")

    for name, operation in operations.items():
        where = f"operations.{name}"
        operation = deref(doc, operation)
        if operation.get("action") not in ("send", "receive"):
            problems.add(where, f"action must be send or receive, found {operation.get('action')!r}")
        channel_ref = (operation.get("channel") or {}).get("$ref", "")
        match = re.fullmatch(r"#/channels/([^/]+)", channel_ref)
        if not match or match.group(1) not in channels:
            problems.add(where, f"channel must reference '#/channels/<name>', found {channel_ref!r}")
            continue
        messages = operation.get("messages")
        if not isinstance(messages, list) or not messages:
            problems.add(where, "messages: list the channel's messages this operation handles")
            continue
        for item in messages:
            ref = item.get("$ref", "") if isinstance(item, dict) else ""
            if not ref.startswith(f"{channel_ref}/messages/"):
                problems.add(where, f"message {ref!r} is not a message of {channel_ref}")

    used = {ref for _, ref in all_refs(doc)}
    for name in (doc.get("components") or {}).get("messages") or {}:
        if f"#/components/messages/{name}" not in used:
            problems.add(f"components.messages.{name}", "defined but no channel uses it")

    # Herald consumes each topic and dead-letters to `<topic>.dlq`.
    addresses = {name: deref(doc, c).get("address") for name, c in channels.items()}
    receive = {addresses[c] for c in operation_channels(doc, "receive")}
    send = {addresses[c] for c in operation_channels(doc, "send")}
    if not receive:
        problems.add("operations", "no receive operation: Herald consumes nothing?")
    for topic in sorted(receive):
        if f"{topic}.dlq" not in send:
            problems.add("operations", f"{topic} has no send operation on {topic}.dlq")
    for topic in sorted(send):
        if topic in OWN_TOPICS:
            continue
        if not topic.endswith(".dlq") or topic[: -len(".dlq")] not in receive:
            problems.add("operations", f"Herald sends to {topic}, which is neither the dead-letter topic of a consumed topic nor one of {OWN_TOPICS}")
    for topic in OWN_TOPICS:
        if topic not in send:
            problems.add("operations", f"no send operation on {topic}")


def operation_channels(doc, action):
    for operation in doc["operations"].values():
        operation = deref(doc, operation)
        if operation.get("action") == action:
            yield operation["channel"]["$ref"].split("/")[-1]


# ---------------------------------------------------------------------------------------
# Schemas

ASYNCAPI_FORMATS = re.compile(r"application/vnd\.aai\.asyncapi(\+json|\+yaml)?;version=3\.0\.0")


def dialect(doc, schema_format, schema):
    """The jsonschema validator class for a schema, from its schemaFormat and $schema."""
    if isinstance(schema, dict) and "$schema" in schema:
        return jsonschema.validators.validator_for(schema)
    if schema_format is None or ASYNCAPI_FORMATS.fullmatch(schema_format):
        # The AsyncAPI Schema Object is a superset of JSON Schema draft-07.
        return jsonschema.Draft7Validator
    if schema_format in ("application/schema+json;version=draft-07", "application/schema+yaml;version=draft-07"):
        return jsonschema.Draft7Validator
    if re.fullmatch(r"application/schema\+(json|yaml);version=(draft-)?2020-12", schema_format):
        return jsonschema.Draft202012Validator
    raise ContractError(f"unsupported schemaFormat {schema_format!r}")


def schema_of(doc, node):
    """(schema, schemaFormat, pointer) of a payload or headers node."""
    if isinstance(node, dict) and "schemaFormat" in node and "schema" in node:
        return node["schema"], node["schemaFormat"], None
    return node, None, None


class Checker:
    """Validates instances against schemas inside the document, resolving '#/...' refs
    against the whole document, with both the declared dialect and draft 2020-12."""

    def __init__(self, doc):
        self.doc = doc
        self.format_checker = jsonschema.FormatChecker()
        try:
            import referencing
            import referencing.jsonschema as specs
        except ImportError:  # jsonschema < 4.18 (Debian 12): RefResolver
            self.registries = None
        else:
            self.registries = {
                cls: referencing.Registry().with_resource(
                    BASE_URI, referencing.Resource(contents=doc, specification=spec))
                for cls, spec in ((jsonschema.Draft7Validator, specs.DRAFT7),
                                  (jsonschema.Draft202012Validator, specs.DRAFT202012))
            }

    def validator(self, cls, location):
        wrapper = {"$ref": f"{BASE_URI}{location}"}
        if self.registries is not None:
            return cls(wrapper, registry=self.registries[cls], format_checker=self.format_checker)
        resolver = jsonschema.RefResolver(BASE_URI, self.doc, store={BASE_URI: self.doc})
        return cls(wrapper, resolver=resolver, format_checker=self.format_checker)

    def errors(self, cls, location, instance):
        """Validation errors of `instance` under the declared dialect, after checking that
        draft 2020-12 gives the same verdict."""
        declared = sorted(self.validator(cls, location).iter_errors(instance), key=lambda e: list(e.path))
        if cls is not jsonschema.Draft202012Validator:
            modern = list(self.validator(jsonschema.Draft202012Validator, location).iter_errors(instance))
            if bool(declared) != bool(modern):
                raise ContractError(
                    f"{location}: {cls.__name__} and Draft202012Validator disagree on {json.dumps(instance)[:200]}")
        return declared


def check_schemas(doc, problems):
    """Every schema is valid for its dialect (and for draft 2020-12)."""
    targets = []
    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        targets.append((f"components.schemas.{name}", schema, None))
    for name, message in ((doc.get("components") or {}).get("messages") or {}).items():
        for part in ("headers", "payload"):
            if part in message:
                schema, fmt, _ = schema_of(doc, message[part])
                targets.append((f"components.messages.{name}.{part}", schema, fmt))
    for where, schema, fmt in targets:
        try:
            cls = dialect(doc, fmt, schema)
            for validator in {cls, jsonschema.Draft202012Validator}:
                validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as error:
            problems.add(where, f"invalid schema: {error.message}")
        except ContractError as error:
            problems.add(where, str(error))
        for pattern_where, pattern in patterns(schema, where):
            try:
                re.compile(pattern)
            except re.error as error:
                problems.add(pattern_where, f"pattern does not compile: {error}")
        if isinstance(schema, dict) and isinstance(schema.get("required"), list):
            declared = set(schema.get("properties") or {})
            for name in schema["required"]:
                if name not in declared:
                    problems.add(where, f"required field {name!r} is not among its properties")


def patterns(node, where):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield where, value
            else:
                yield from patterns(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from patterns(value, f"{where}[{i}]")


# ---------------------------------------------------------------------------------------
# Messages, examples and cases

class Message:
    def __init__(self, doc, channel_name, key):
        channel = deref(doc, doc["channels"][channel_name])
        node = channel["messages"][key]
        self.location_base = node["$ref"] if "$ref" in node else f"#/channels/{channel_name}/messages/{key}"
        self.message = deref(doc, node)
        self.topic = channel["address"]
        self.name = self.message.get("name", key)
        payload, fmt, _ = schema_of(doc, self.message["payload"])
        self.payload_schema = deref(doc, payload)
        self.payload_dialect = dialect(doc, fmt, payload)
        self.payload_location = self.location_base + ("/payload/schema" if fmt else "/payload")
        self.headers_location = None
        if "headers" in self.message:
            headers, hfmt, _ = schema_of(doc, self.message["headers"])
            self.headers_dialect = dialect(doc, hfmt, headers)
            self.headers_location = self.location_base + ("/headers/schema" if hfmt else "/headers")
        self.examples = self.message.get("examples") or []

    def verdict(self, checker, headers, payload):
        """The schema errors of a record, as readable strings."""
        found = []
        if self.headers_location is not None:
            found += [f"headers: {e.message}" for e in checker.errors(self.headers_dialect, self.headers_location, headers)]
        elif headers:
            found.append("headers: the message declares no headers")
        found += [f"payload{''.join(f'.{p}' for p in e.path)}: {e.message}"
                  for e in checker.errors(self.payload_dialect, self.payload_location, payload)]
        return found


def consumed_messages(doc):
    for channel_name in operation_channels(doc, "receive"):
        for operation in doc["operations"].values():
            if operation.get("action") != "receive" or operation["channel"]["$ref"] != f"#/channels/{channel_name}":
                continue
            for item in operation["messages"]:
                yield Message(doc, channel_name, item["$ref"].split("/")[-1])


def produced_messages(doc):
    for channel_name in operation_channels(doc, "send"):
        channel = deref(doc, doc["channels"][channel_name])
        for key in channel["messages"]:
            yield Message(doc, channel_name, key)


def check_examples(doc, checker, problems):
    examples = []
    for message in list(consumed_messages(doc)) + list(produced_messages(doc)):
        where = f"{message.topic} {message.name}"
        consumed = message.topic in {deref(doc, doc["channels"][c])["address"] for c in operation_channels(doc, "receive")}
        if consumed and len(message.examples) != 1:
            problems.add(where, f"expected exactly one example per event, found {len(message.examples)}")
        for i, example in enumerate(message.examples):
            headers = example.get("headers", {})
            payload = example.get("payload")
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                problems.add(f"{where} example {i}", "headers must map names to strings (Kafka header values)")
                continue
            for error in message.verdict(checker, headers, payload):
                problems.add(f"{where} example {example.get('name', i)}", error)
            if consumed:
                if not isinstance(payload, dict):
                    problems.add(f"{where} example {i}", "an event's payload must be a JSON object")
                    continue
                examples.append(record(message, headers, payload, ensure_ascii=False))
    return examples


def record(message, headers, payload, ensure_ascii):
    return {
        "topic": message.topic,
        "event_type": message.name,
        "headers": headers,
        "payload": payload,
        "value": json.dumps(payload, ensure_ascii=ensure_ascii, separators=(",", ":")),
    }


# Good and bad values for the value objects, keyed by the component schema a field uses.
# JSON Schema and Herald must agree on every one: the Swift tests replay them.
EMAIL_BAD = [
    "not-an-email", "a@b.com\r\nBcc: x", "a@b.com\nBcc: x", "ada\r\n@example.com", "ada@localhost",
    "a..b@example.com", ".ada@example.com", "ada.@example.com", "a b@example.com", '"ada"@example.com',
    "ada(comment)@example.com", "Ada <ada@example.com>", "ada@-example.com", "ada@example-.com",
    "ada@exa_mple.com", "ada@@example.com", "a@b@example.com", "@example.com", "ada@", "ada@example..com",
    "ada@[127.0.0.1]", "ada@example.com.", "x" * 65 + "@example.com", "ada@" + "x" * 64 + ".com",
    "ada@" + ".".join(["x" * 63] * 4), "ada\u0000@example.com", "ada\u00a0@example.com", 42, True,
]
EMAIL_GOOD = [
    "ada@example.com", "ada.lovelace+herald@mail.example.co.uk", "o'brien@example.ie", "x" * 64 + "@example.com",
    "ada@" + "x" * 63 + ".com", "a@" + ".".join(["x" * 63] * 3) + "." + "x" * 60, "user@xn--bcher-kva.example",
    "ünïcødé@bücher.de", "first_last-1!#$%&*/=?^`{|}~@example.com", "ADA@EXAMPLE.COM", "a@1.2",
]
SAMPLES = {
    "UserId": {
        "good": ["0190f5a2-7c1e-7b3a-9d1e-3f2a1b4c5d6e", 42, -1, 0, 9223372036854775807, -9223372036854775808,
                 "1; DROP TABLE users;--", "Robert'); DROP TABLE students;--", "i" * 128, "ユーザー", "a b"],
        "bad": ["", "i" * 129, "u\r\n", "u\n", " u", "u ", "\u00a0u", "a\u0000b", "\u007f", 9223372036854775808,
                -9223372036854775809, 1.5, True, {}, [], None],
    },
    "Username": {
        "good": ["ada", 7, "name with spaces", "u" * 150, "O'Brien; --"],
        "bad": ["", "u" * 151, "ada\u0000", "\u00a0ada", "ada\t", None, 1.5, ["ada"]],
    },
    "RoleName": {
        "good": ["admin", "Robert'); DROP TABLE roles;--", "r" * 255, "ロール", "role:with:colons"],
        "bad": ["", " admin", "admin ", "ad\tmin", "admin\r\nX-Injected: 1", "r" * 256, 5, None, True],
    },
    "Email": {"good": EMAIL_GOOD, "bad": [""] + EMAIL_BAD + [None]},
    "OptionalEmail": {"good": EMAIL_GOOD + ["", None], "bad": EMAIL_BAD},
    "Locale": {
        "good": ["", None, "en", "pt-BR", "zh-Hant-TW", "EN", "de-CH-1996", "sr-Latn-RS", "ab-" + "-".join(["cdefgh"] * 4) + "-abcd"],
        "bad": ["e", "english language", "en_US", "en-", "-en", "abcdefghi", "en-abcdefghi", "en-GB\n", "é", 5,
                "ab-" + "-".join(["cdefgh"] * 4) + "-abcde", "en--GB"],
    },
    "PersonalName": {
        "good": ["", None, "Ada", " Ada ", "Zoë", "x" * 200, "O'Brien"],
        "bad": ["a\nb", "x" * 201, 5, "\u0000", "Ada\u0085", {}],
    },
}
ENVELOPE_SAMPLES = {
    "occurred_at": {
        "good": ["2024-05-01T12:00:00Z", "2024-05-01t12:00:00z", "2024-05-01T14:00:00.123456+02:00",
                 "2024-05-01T06:30:00-05:30", "2024-05-01 12:00:00", "2024-05-01T12:00:00", "2024-02-29T00:00:00Z",
                 "2000-02-29T00:00:00Z", "2016-12-31T23:59:60Z", "1970-01-01T00:00:00.000Z", None],
        "bad": ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z",
                "2024-04-31T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z", "2024-05-01T12:00:61Z",
                "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+0200", "2024-05-01T12:00:00.Z", "2024-05-01",
                "2024-05-01T12:00Z", "24-05-01T12:00:00Z", "yesterday", "2024-05-01T12:00:00Z\n",
                " 2024-05-01T12:00:00Z", 1714564800, True],
    },
    "event_timestamp": {
        "good": [1714564800, 1714564800.25, -5, 0, 1893455999, "1714564800", "1714564800.123", "-5", None],
        "bad": ["soon", "", True, 1714564800000, -100000000000, "1714564800000", "1714564800\n", {}, [1]],
    },
    "created_at": {
        "good": ["2024-05-01T12:00:00.123456+00:00", None],
        "bad": ["May 1, 2024", 5, "2024-02-30T00:00:00Z"],
    },
    "event_id": {
        "good": ["e-1", 17, -17, "x" * 200, "0190f5a3-0000-7000-8000-0000000000a1", None],
        "bad": ["", "x" * 201, 1.5, " e", "e\n", True, {}],
    },
    "id": {
        "good": ["e-1", 17, "x" * 200, None],
        "bad": ["", "x" * 201, 1.5, "e ", [], False],
    },
}


def generated_cases(doc):
    """Variations of each event's example with the verdict both the schema and Herald
    must reach."""
    cases = []
    for message in consumed_messages(doc):
        example = message.examples[0]
        headers, payload = dict(example.get("headers", {})), dict(example["payload"])
        props = message.payload_schema.get("properties", {})
        required = set(message.payload_schema.get("required", []))

        def case(expect, why, h, p):
            item = record(message, h, p, ensure_ascii=True)
            item.update(expect=expect, why=f"{message.name}: {why}")
            cases.append(item)

        case("accept", "the example", headers, payload)
        case("accept", "an unknown field", headers, {**payload, "unexpected": {"nested": [1, None, "x"]}})
        for field, schema in props.items():
            if field in ENVELOPE_FIELDS:
                continue
            kind = component_name(schema)
            if kind not in SAMPLES:
                raise ContractError(f"{message.name}.{field}: no samples for {kind!r}")
            without = {k: v for k, v in payload.items() if k != field}
            case("reject" if field in required else "accept", f"without {field}", headers, without)
            for value in SAMPLES[kind]["good"]:
                case("accept", f"{field}={short(value)}", headers, {**payload, field: value})
            for value in SAMPLES[kind]["bad"]:
                case("reject", f"{field}={short(value)}", headers, {**payload, field: value})

        # Envelope: start from the bare fields, typed in the body, and vary one source at a time.
        bare = {k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS}
        typed = {**bare, "event_type": message.name}
        for field, samples in ENVELOPE_SAMPLES.items():
            for value in samples["good"]:
                case("accept", f"{field}={short(value)}", {}, {**typed, field: value})
            for value in samples["bad"]:
                case("reject", f"{field}={short(value)}", {}, {**typed, field: value})
        case("accept", "type in field type", {}, {**bare, "type": message.name})
        case("accept", "event_type null, type in field type", {}, {**bare, "event_type": None, "type": message.name})
        case("accept", "type in header ce_type", {"ce_type": message.name}, bare)
        case("accept", "type in header event_type", {"event_type": message.name}, bare)
        case("accept", "id in header ce_id", {"ce_id": "evt-1", "ce_type": message.name}, bare)
        case("reject", "unknown type in field event_type", {}, {**bare, "event_type": "NoSuchEvent"})
        case("reject", "unknown type in field type", {}, {**bare, "type": "NoSuchEvent"})
        case("reject", "type field of the wrong kind", {}, {**bare, "type": 5})
        case("reject", "event_type field of the wrong kind", {}, {**bare, "event_type": ["x"]})
        case("reject", "unknown type in header ce_type", {"ce_type": "NoSuchEvent"}, bare)
        case("reject", "empty header ce_id", {"ce_type": message.name, "ce_id": ""}, bare)
        case("reject", "padded header ce_id", {"ce_type": message.name, "ce_id": " evt-1"}, bare)
        case("reject", "header ce_id with a line break", {"ce_type": message.name, "ce_id": "evt\r\n1"}, bare)
    return cases


def short(value):
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


def component_name(schema):
    """The component a property schema refers to, e.g. 'Email' for allOf: [$ref Email]."""
    refs = [s["$ref"] for s in schema.get("allOf", []) if isinstance(s, dict) and "$ref" in s]
    if "$ref" in schema:
        refs.append(schema["$ref"])
    if len(refs) != 1 or not refs[0].startswith("#/components/schemas/"):
        raise ContractError(f"cannot tell which value object {schema!r} is")
    return refs[0].rsplit("/", 1)[1]


def check_cases(doc, checker, problems):
    cases = generated_cases(doc)
    messages = {m.name: m for m in consumed_messages(doc)}
    for item in cases:
        errors = messages[item["event_type"]].verdict(checker, item["headers"], item["payload"])
        verdict = "reject" if errors else "accept"
        if verdict != item["expect"]:
            detail = "; ".join(errors) if errors else "the schema accepts it"
            problems.add(item["why"], f"expected the schema to {item['expect']}, but {detail}")
    rejected = [c for c in cases if c["expect"] == "reject"]
    for needed in ("without user_id", "email='not-an-email'"):
        if not any(needed in c["why"] for c in rejected):
            problems.add("cases", f"no invalid payload '{needed}' was checked")
    return cases


# ---------------------------------------------------------------------------------------

def check_published(doc, checker, path, problems):
    """Records Herald published, each against the messages of its topic's channel: the one
    whose ce_type header it carries, else any of them."""
    try:
        records = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        problems.add(path, f"cannot read the published records: {error}")
        return 0
    if not isinstance(records, list) or not records:
        problems.add(path, "expected a non-empty JSON array of records")
        return 0
    by_topic = {}
    for message in produced_messages(doc):
        by_topic.setdefault(message.topic, []).append(message)
    for i, item in enumerate(records):
        where = f"{path} record {i}"
        if not isinstance(item, dict):
            problems.add(where, "expected an object {topic, headers, payload}")
            continue
        candidates = by_topic.get(item.get("topic"), [])
        headers = item.get("headers") or {}
        typed = [m for m in candidates if m.name == headers.get("ce_type")]
        if not candidates:
            problems.add(where, f"Herald does not publish to {item.get('topic')!r} in the document")
            continue
        verdicts = [m.verdict(checker, headers, item.get("payload")) for m in (typed or candidates)]
        if all(verdicts):
            for error in verdicts[0]:
                problems.add(where, error)
    return len(records)


def main(argv):
    arguments = argv[1:]
    published = None
    if "--validate-published" in arguments:
        at = arguments.index("--validate-published")
        if at + 1 >= len(arguments):
            print(__doc__, file=sys.stderr)
            return 2
        published = arguments[at + 1]
        arguments = arguments[:at] + arguments[at + 2:]
    options = set(arguments)
    unknown = options - {"--emit-examples", "--emit-cases"}
    if unknown or (len(options) > 1) or (published and options):
        print(__doc__, file=sys.stderr)
        return 2
    problems = Problems()
    try:
        doc = load(DOCUMENT)
        check_structure(doc, problems)
        check_schemas(doc, problems)
        if problems:
            raise ContractError("the document's structure or schemas are invalid")
        checker = Checker(doc)
        examples = check_examples(doc, checker, problems)
        cases = check_cases(doc, checker, problems)
        checked = check_published(doc, checker, published, problems) if published else 0
    except ContractError as error:
        problems.add(DOCUMENT.name, str(error))
    if problems:
        print(f"contract.py: {DOCUMENT} has {len(problems.items)} problem(s):", file=sys.stderr)
        for item in problems.items:
            print(f"  - {item}", file=sys.stderr)
        return 1
    # Bytes, so that the output is UTF-8 whatever the locale.
    if "--emit-examples" in options:
        sys.stdout.buffer.write(json.dumps(examples, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
    elif "--emit-cases" in options:
        sys.stdout.buffer.write(json.dumps(cases, ensure_ascii=True).encode("utf-8") + b"\n")
    else:
        accepted = sum(1 for c in cases if c["expect"] == "accept")
        print(f"contract.py: {DOCUMENT.name} OK: {len(examples)} event examples, "
              f"{accepted} valid and {len(cases) - accepted} invalid payloads checked"
              + (f", {checked} published records valid" if published else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
