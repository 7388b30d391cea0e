#!/usr/bin/env python3
"""Writes the fuzzing seed corpus, Tests/Fuzz/Corpus/<target>/seed-*, from the examples below.

The input formats are described in Sources/HeraldFuzzing (one file per target): fields
separated by 0xFF, except the configuration target (records separated by 0x00, the first
byte of each choosing the variable). Run it after changing an example or a format; files
libFuzzer found (regression-*) are kept.
"""
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")
SEP = b"\xff"


def fields(*parts):
    return SEP.join(p.encode() if isinstance(p, str) else p for p in parts)


ENVELOPE = {
    "user-created": fields('{"event_type":"UserCreated","event_id":"6f0c","user_id":"42","username":"ada",'
                           '"email":"ada@example.com","locale":"en","occurred_at":"2024-05-01T12:00:00Z"}'),
    "user-registered": fields('{"type":"UserRegistered","id":17,"user_id":17,"username":"jos\\u00e9",'
                              '"email":"jose@example.com","first_name":"Jos\u00e9","last_name":null,"locale":"pt-BR",'
                              '"created_at":"2024-05-01T12:00:00.250+02:00"}'),
    "email-change": fields('{"event_type":"EmailChangeRequested","user_id":"u1","old_email":"a@example.com",'
                           '"new_email":"b@mail.example.org","event_timestamp":"1714564800.5"}'),
    "sessions-revoked": fields('{"event_type":"UserSessionsRevoked","user_id":"7","event_timestamp":1714564800,'
                               '"extra":[1,-0.5e+3,true,false,null,{"a":["\\ud83d\\ude00"]}]}'),
    "reset-escapes": fields('{"event_type":"PasswordResetRequested","user_id":"u\\u00e9","email":"x.y+z@example.co.uk",'
                            '"locale":"","meta":{"note":"tab\\tquote\\"slash\\/"}}', b"\x00", b"", b"", b"", b"",
                            "PasswordResetRequested"),
    # No type anywhere: the topic byte picks the user topic, whose default type applies; a record
    # timestamp and a key.
    "default-type": fields('{"user_id":"9","username":"bob"}', b"\x01", b"\x00\x10\xa5\xd4\x8f\x01\x00\x00", "key-9"),
    "not-an-object": fields("[1,2,3]"),
    "role-headers": fields('{"role":"editor","occurred_at":"2024-05-01T12:00:00Z"}', b"\x00", b"", b"", "RoleDeleted",
                           "evt-1"),
}

TIME = {
    "utc": fields("2024-05-01T12:00:00Z"),
    "offset-fraction": fields("2024-02-29T23:59:60.123456+05:30"),
    "naive-space": fields("1970-01-01 00:00:00"),
    "end-of-range": fields("9999-12-31T23:59:59.999-00:00"),
    "lower-case": fields("0001-01-01t00:00:00z"),
    "epoch-seconds": fields("1714564800.5"),
    "epoch-negative": fields("-86400"),
    "instant-bytes": fields("2024-05-01T12:00:00+01:00", b"\x00\x10\xa5\xd4\x8f\x01\x00\x00"),
}

CONFIG_VARIABLES = [
    "HERALD_AUTH_TOPIC", "HERALD_COMMIT_INTERVAL", "HERALD_DATABASE_AUTO_MIGRATE", "HERALD_DATABASE_CONNECT_TIMEOUT",
    "HERALD_DATABASE_PASSWORD", "HERALD_DATABASE_POOL_SIZE", "HERALD_DATABASE_SCHEMA", "HERALD_DATABASE_STATEMENT_TIMEOUT",
    "HERALD_DATABASE_URL", "HERALD_DEFAULT_EVENT_TYPES", "HERALD_DLQ_SUFFIX", "HERALD_EMBEDDED_BOOTSTRAP_FILE",
    "HERALD_EMBEDDED_PARTITIONS", "HERALD_HEALTH_STALL_TIMEOUT", "HERALD_HTTP_ADDRESS", "HERALD_IGNORED_EVENT_TYPES",
    "HERALD_INBOX_RETENTION", "HERALD_KAFKA_BROKERS", "HERALD_KAFKA_CLIENT_ID", "HERALD_KAFKA_GROUP",
    "HERALD_KAFKA_PROPERTIES_FILE", "HERALD_LAG_INTERVAL", "HERALD_LINK_BASE_URL", "HERALD_LINK_PATH_EMAIL_CHANGE",
    "HERALD_LINK_PATH_RESET_PASSWORD", "HERALD_LINK_PATH_VERIFY_EMAIL", "HERALD_LOG_FORMAT", "HERALD_LOG_LEVEL",
    "HERALD_LOG_MASK_EMAILS", "HERALD_MAIL_BATCH", "HERALD_MAIL_CLAIM_TIMEOUT", "HERALD_MAIL_DEFAULT_LOCALE",
    "HERALD_MAIL_DISABLED", "HERALD_MAIL_ENABLED", "HERALD_MAIL_FROM", "HERALD_MAIL_MAX_AGE", "HERALD_MAIL_MAX_ATTEMPTS",
    "HERALD_MAIL_POLL_INTERVAL", "HERALD_MAIL_RATE_LIMITS", "HERALD_MAIL_REPLY_TO", "HERALD_MAIL_RETRY_INITIAL",
    "HERALD_MAIL_RETRY_MAX", "HERALD_MAX_BATCH", "HERALD_MEMORY_BUDGET", "HERALD_MAX_CLOCK_SKEW",
    "HERALD_OUTBOX_BATCH_SIZE", "HERALD_OUTBOX_CHANNEL", "HERALD_OUTBOX_COLUMNS", "HERALD_OUTBOX_DATABASE_PASSWORD",
    "HERALD_OUTBOX_DATABASE_URL", "HERALD_OUTBOX_ENABLED", "HERALD_OUTBOX_LISTEN", "HERALD_OUTBOX_MAX_ATTEMPTS",
    "HERALD_OUTBOX_MAX_MESSAGE_BYTES", "HERALD_OUTBOX_POLL_INTERVAL", "HERALD_OUTBOX_RETENTION", "HERALD_OUTBOX_TABLE",
    "HERALD_OUTBOX_TOPICS", "HERALD_OUTBOX_TOPIC_PATTERN", "HERALD_PRODUCT_NAME", "HERALD_READINESS_TIMEOUT",
    "HERALD_REDIS_COMMAND_TIMEOUT", "HERALD_REDIS_CONNECT_TIMEOUT", "HERALD_REDIS_PASSWORD", "HERALD_REDIS_POOL_SIZE",
    "HERALD_REDIS_URL", "HERALD_RETRY_INITIAL", "HERALD_RETRY_MAX", "HERALD_ROLE_INVALIDATION_TTL", "HERALD_SHUTDOWN_TIMEOUT",
    "HERALD_SMTP_ALLOW_PLAINTEXT", "HERALD_SMTP_CA_FILE", "HERALD_SMTP_CONNECT_TIMEOUT", "HERALD_SMTP_HELO",
    "HERALD_SMTP_PASSWORD", "HERALD_SMTP_REUSE_CONNECTIONS", "HERALD_SMTP_TIMEOUT", "HERALD_SMTP_URL", "HERALD_SMTP_USER",
    "HERALD_SMTP_VERIFY_CERTIFICATE", "HERALD_SMTP_WORKERS", "HERALD_SUPPORT_EMAIL", "HERALD_TEMPLATES_DIR",
    "HERALD_USER_REVOCATION_TTL", "HERALD_USER_TOPIC", "HERALD_SMTP_AUTH", "HERALD_SMTP_OAUTH2_TOKEN_FILE",
    "HERALD_SMTP_OAUTH2_TOKEN_URL", "HERALD_SMTP_OAUTH2_CLIENT_ID", "HERALD_SMTP_OAUTH2_CLIENT_SECRET", "HERALD_SMTP_OAUTH2_SCOPE",
]
PROPERTY = 0x7F  # a selector beyond the list: HERALD_KAFKA_PROPERTY_<name>=<value>


def env(*pairs):
    records = []
    for name, value in pairs:
        from_file = name.endswith("_FILE") and name[:-5] in CONFIG_VARIABLES
        base = name[:-5] if from_file else name
        if base.startswith("HERALD_KAFKA_PROPERTY_"):
            selector = PROPERTY
            value = base[len("HERALD_KAFKA_PROPERTY_"):] + "=" + value
        else:
            selector = CONFIG_VARIABLES.index(base)
        records.append(bytes([selector | (0x80 if from_file else 0)]) + value.encode())
    return b"\x00".join(records)


CONFIGURATION = {
    "durations": env(("HERALD_COMMIT_INTERVAL", "250ms"), ("HERALD_SHUTDOWN_TIMEOUT", "10s"),
                     ("HERALD_RETRY_INITIAL", "100ms"), ("HERALD_RETRY_MAX", "30s"), ("HERALD_MAX_CLOCK_SKEW", "5m"),
                     ("HERALD_INBOX_RETENTION", "14d"), ("HERALD_ROLE_INVALIDATION_TTL", "1.5h")),
    "redis-tcp": env(("HERALD_REDIS_URL", "redis://herald:p%40ss@[::1]:6380/2"), ("HERALD_REDIS_PASSWORD_FILE", "s3cret\n"),
                     ("HERALD_REDIS_POOL_SIZE", "8"), ("HERALD_REDIS_COMMAND_TIMEOUT", "2s")),
    "redis-unix": env(("HERALD_REDIS_URL", "unix:///var/run/redis.sock?db=3"), ("HERALD_DATABASE_URL", "postgresql://h@db/auth"),
                      ("HERALD_DATABASE_SCHEMA", "herald_2"), ("HERALD_DATABASE_AUTO_MIGRATE", "yes")),
    "smtp": env(("HERALD_SMTP_URL", "smtps://mailer:p%20w@mail.example.com:465/helo.example.com"),
                ("HERALD_MAIL_FROM", '"Herald, Inc." <noreply@example.com>'), ("HERALD_MAIL_REPLY_TO", "help@example.com"),
                ("HERALD_LINK_BASE_URL", "https://auth.example.com/"), ("HERALD_LINK_PATH_RESET_PASSWORD", "/reset?x=1"),
                ("HERALD_PRODUCT_NAME", "Herald\u2122"), ("HERALD_SUPPORT_EMAIL", "support@example.com"),
                ("HERALD_SMTP_TIMEOUT", "30s"), ("HERALD_MAIL_CLAIM_TIMEOUT", "5m")),
    "smtp-xoauth2": env(("HERALD_SMTP_URL", "smtp://smtp.office365.com:587"), ("HERALD_SMTP_AUTH", "xoauth2"),
                        ("HERALD_SMTP_USER", "no-reply@example.com"),
                        ("HERALD_SMTP_OAUTH2_TOKEN_URL", "https://login.example.com/tenant/oauth2/v2.0/token"),
                        ("HERALD_SMTP_OAUTH2_CLIENT_ID", "herald"), ("HERALD_SMTP_OAUTH2_CLIENT_SECRET_FILE", "s3cret\n"),
                        ("HERALD_SMTP_OAUTH2_SCOPE", "https://outlook.office365.com/.default")),
    "mail-policy": env(("HERALD_MAIL_RATE_LIMITS", "password_reset=5/1h, verify_email=3/30m"),
                       ("HERALD_MAIL_MAX_AGE", "password_reset=30m,welcome=2d"), ("HERALD_MAIL_DISABLED", "welcome"),
                       ("HERALD_MAIL_DEFAULT_LOCALE", "pt-BR"), ("HERALD_MAIL_RETRY_INITIAL", "30s"),
                       ("HERALD_MAIL_RETRY_MAX", "1h")),
    "outbox": env(("HERALD_OUTBOX_TABLE", "public.outbox_events"), ("HERALD_OUTBOX_COLUMNS", "id=event_id,event_data=payload"),
                  ("HERALD_OUTBOX_TOPICS", "User=identity.users,Order=orders"),
                  ("HERALD_OUTBOX_TOPIC_PATTERN", "{aggregate_type}.events"), ("HERALD_OUTBOX_CHANNEL", "outbox_wake"),
                  ("HERALD_OUTBOX_MAX_MESSAGE_BYTES", "65536")),
    "kafka": env(("HERALD_KAFKA_BROKERS", "k1:9092, k2:9092"), ("HERALD_KAFKA_GROUP", "herald-eu"),
                 ("HERALD_USER_TOPIC", "users"), ("HERALD_AUTH_TOPIC", "auth.events"), ("HERALD_DLQ_SUFFIX", ".dead"),
                 ("HERALD_DEFAULT_EVENT_TYPES", "users=UserCreated"), ("HERALD_IGNORED_EVENT_TYPES", "Audit, Login"),
                 ("HERALD_KAFKA_PROPERTY_SASL_PASSWORD", "kafka-secret"),
                 ("HERALD_KAFKA_PROPERTIES_FILE", "# comment\nsecurity.protocol=SASL_SSL\n")),
    "operations": env(("HERALD_HTTP_ADDRESS", "[::1]:9464"), ("HERALD_LAG_INTERVAL", "5s"), ("HERALD_LOG_FORMAT", "json"),
                      ("HERALD_LOG_LEVEL", "debug"), ("HERALD_MAIL_ENABLED", "false"), ("HERALD_LOG_MASK_EMAILS", "on")),
}

# kind byte: index into NotificationKind.allCases (welcome, verify_email, password_reset,
# password_changed, email_change_confirm, email_change_requested, email_changed).
MAIL = {
    "welcome": fields(b"\x00", "ada", "ada@example.com", "en"),
    "reset-non-ascii": fields(b"\x02", "Jos\u00e9 \u00d1o\u00f1o", "jose@example.com", "pt-BR",
                              "\u00c9quipe Herald <noreply@example.com>"),
    "change-confirm": fields(b"\x04", "ana", "new@example.org", "", "", "Support <help@example.com>", "",
                             "old@example.com", "new@example.org", "", "1893455000000"),
    "verify-quoted": fields(b"\x01", "a.very.long.user.name.that.needs.folding.in.the.to.header.of.the.message",
                            "user+tag@sub.example.com", "en-GB", '"Herald, Inc." <no-reply@example.com>', "", "Herald\u2122",
                            "", "", "", "", "https://auth.example.com/base", "/verify?from=mail"),
    "changed-idn": fields(b"\x06", "\u5f20\u4f1f", "jos\u00e9@ex\u00e4mple.com", "zh", "", "", "", "old@ex\u00e4mple.com",
                          "jos\u00e9@ex\u00e4mple.com"),
}

OUTBOX = {
    "user-created": fields(b"\x00", "0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11", "User", "42", "UserCreated",
                           '{"user_id":"42","username":"ada"}', "1714564800000", "0"),
    "mapped-topic": fields(b"\x00", "17", "Order", "order-9", "OrderPlaced", '{"lines":[{"sku":"a","qty":2}]}',
                           "1714564800123", "2", "Order=shop.orders,User=identity.users"),
    "jsonb-pattern": fields(b"\x01", "18", "Invoice", "inv-1", "InvoiceIssued", "[1,2,3]", "0", "", "",
                            "events.{aggregate_type}"),
    "not-json": fields(b"\x00", "19", "User", "43", "UserDeleted", "{not json", "1714564800000", "4"),
    "empty-key": fields(b"\x00", "20", "User", "", "UserCreated", "{}", "1714564800000"),
    "size-limit": fields(b"\x00", "21", "User", "44", "UserCreated", '{"bio":"' + "x" * 1100 + '"}', "1714564800000", "0",
                         "", "{aggregate_type}.events", "1024"),
}

# The HTTP status as two bytes (big-endian), then the body.
def answer(status, body):
    return bytes([status >> 8, status & 0xFF]) + SEP + body.encode()


OAUTH2 = {
    "microsoft": answer(200, '{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,'
                             '"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2ln"}'),
    "expires-string": answer(200, '{"access_token":"ya29.a0AfB_byC-token","token_type":"bearer","expires_in":"3600"}'),
    "keycloak": answer(200, '{"access_token":"eyJhbGciOi.J9.x","expires_in":300,"refresh_expires_in":0,'
                            '"token_type":"Bearer","not-before-policy":0,"scope":"email profile"}'),
    "invalid-client": answer(401, '{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.",'
                                  '"error_codes":[7000215],"timestamp":"2026-11-30 12:00:00Z"}'),
    "server-error": answer(503, "<html><body>Service Unavailable</body></html>"),
    "not-json": answer(200, "access_token=abc&token_type=bearer"),
}


def main():
    for target, seeds in [("envelope", ENVELOPE), ("time", TIME), ("configuration", CONFIGURATION), ("mail", MAIL),
                          ("outbox", OUTBOX), ("oauth2", OAUTH2)]:
        directory = os.path.join(ROOT, target)
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith("seed-"):
                os.remove(os.path.join(directory, name))
        for name, data in seeds.items():
            with open(os.path.join(directory, "seed-" + name), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
