"""The checker's own test (SOAK_SELF_TEST=1, which CI sets): after the real check, plant one
violation of each kind the checker looks for, check again, and require every one to be
reported. A checker that passes vacuously (reads an empty topic, the wrong table, no mail)
fails this."""

import base64
import hashlib
import json
import os
import re
import uuid

import check
from services import read_json_lines


def plant(context):
    """Damages the state once per category; returns the categories that must now fail."""
    import psycopg2
    import redis
    from confluent_kafka import Producer

    planted = {}
    r = redis.Redis.from_url(context["redis_url"])
    roles = list(r.scan_iter(match="invalid_role: *", count=1000))
    if roles:
        r.delete(roles[0])
        planted["revocations"] = f"deleted {roles[0].decode()!r}"
    with psycopg2.connect(context["database_url"]) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE herald.recipients SET username = 'planted' WHERE user_id = "
                       "(SELECT user_id FROM herald.recipients WHERE username IS NOT NULL ORDER BY user_id LIMIT 1)")
        if cursor.rowcount == 1:
            planted["recipients"] = "changed a username"
        cursor.execute("SELECT id::text FROM outbox_events LIMIT 1")
        some_row = cursor.fetchone()
    smtp_dir = context["smtp_dir"]
    messages = sorted(n for n in os.listdir(smtp_dir) if n.startswith("msg-") and n.endswith(".json"))
    token_mail = None
    for name in reversed(messages):
        with open(os.path.join(smtp_dir, name)) as f:
            data = base64.b64decode(json.load(f)["data"])
        tokens = check.TOKEN_IN_LINK.findall(data.decode("utf-8", "replace").replace("=\r\n", "").replace("=3D", "="))
        if b"X-Herald-Kind: password_reset" in data and tokens:
            token_mail = (name, tokens[0])
            break
    if token_mail:
        r.delete("reset_password_token:" + hashlib.sha256(token_mail[1].encode()).hexdigest())
        planted["tokens"] = f"deleted the token hash of {token_mail[0]}"
    # A message accepted once (deleting one copy of a duplicate would leave the other).
    ids = {}
    for name in messages:
        with open(os.path.join(smtp_dir, name)) as f:
            data = base64.b64decode(json.load(f)["data"])
        match = re.search(rb"^Message-ID: *(<[^>]+>)", data, re.MULTILINE | re.IGNORECASE)
        ids.setdefault(match.group(1) if match else name, []).append(name)
    for names in ids.values():
        if len(names) == 1 and (token_mail is None or names[0] != token_mail[0]):
            os.unlink(os.path.join(smtp_dir, names[0]))
            planted["mail"] = f"deleted the accepted message {names[0]}"
            break
    producer = Producer({"bootstrap.servers": context["bootstrap"]})
    events = [e for e in read_json_lines(os.path.join(context["run_dir"], "events.jsonl")) if e.get("kind") == "event"]
    delivered = {e["rec"]: e for e in read_json_lines(os.path.join(context["run_dir"], "events.jsonl")) if e["t"] == "delivered"}
    valid = next((e for e in events if e["rec"] in delivered and e["topic"] == context["auth_topic"]), None)
    if valid:
        d = delivered[valid["rec"]]
        headers = [("herald.original.topic", valid["topic"].encode()), ("herald.original.partition", str(d["partition"]).encode()),
                   ("herald.original.offset", str(d["offset"]).encode())]
        producer.produce(context["auth_topic"] + context["dlq_suffix"], value=b"planted", headers=headers)
        planted["dlq"] = "a dead letter of a valid event"
    if some_row:
        outbox_topic = sorted(context["outbox_topics"].values())[0]
        producer.produce(outbox_topic, key=str(uuid.uuid4()).encode(), value=b"{}", headers=[("ce_id", str(uuid.uuid4()).encode())])
        planted["outbox"] = "a message whose ce_id is no committed row"
    producer.produce(context["auth_topic"], key=b"planted", value=json.dumps(
        {"event_type": "RoleDeleted", "event_id": f"planted-{uuid.uuid4()}", "role": "planted"}).encode())
    planted["lag"] = "a record nobody consumed"
    producer.flush(60)
    return planted


PLANTED = {"revocations", "recipients", "mail", "tokens", "dlq", "outbox", "lag"}


def run(context):
    """Returns (caught, missed): planted categories the checker did and did not report (a
    category that could not be planted, for want of data, counts as missed)."""
    planted = plant(context)
    for category in sorted(PLANTED - set(planted)):
        planted[category] = "could not be planted (no data to damage)"
    result = check.Checker(context).run()
    reported = {v["category"] for v in result["violations"]}
    caught = {c: what for c, what in planted.items() if c in reported and not what.startswith("could not")}
    missed = {c: what for c, what in planted.items() if c not in caught}
    return caught, missed
