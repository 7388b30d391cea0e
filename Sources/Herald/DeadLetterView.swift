import Foundation
import HeraldCore
import HeraldKafka

/// How `herald dlq` prints dead letters. Everything a letter carries (key, value, header
/// names and values, even the provenance headers, which any producer to the topic could have
/// written) goes through `PrintableBytes`: escaped, cut at `maxBytes` with the size given,
/// email addresses masked with `maskEmails` as in the logs.
struct DeadLetterView {
    let maxBytes: Int?
    let maskEmails: Bool

    /// A short text from a letter (a header), escaped and masked, never cut.
    func text(_ value: String?) -> String? {
        value.map { PrintableBytes.render($0, maskEmails: maskEmails).text }
    }

    func bytes(_ value: [UInt8]) -> PrintableBytes.Rendered {
        PrintableBytes.render(value, limit: maxBytes, maskEmails: maskEmails)
    }

    static func time(_ time: EventTime?) -> String? { time.map(RFC3339.format) }

    static func time(milliseconds: Int64?) -> String? {
        milliseconds.map { RFC3339.format(EventTime(millisecondsSinceEpoch: $0)) }
    }

    /// `topic[partition] offset N` of the letter in its dead-letter topic.
    func position(_ record: DeadLetterRecord) -> String {
        "\(record.topic)[\(record.partition)] offset \(record.offset)"
    }

    /// Where a replayed record goes.
    func target(_ record: OutboundRecord) -> String {
        record.partition.map { "\(record.topic)[\($0)]" } ?? record.topic
    }

    // MARK: list

    func listText(_ snapshot: KafkaDeadLetterReader.TopicSnapshot, _ summary: DeadLetterSummary) -> String {
        guard snapshot.exists else { return "\(snapshot.topic): no such topic" }
        guard summary.count > 0 else { return "\(snapshot.topic): no dead letters" + (snapshot.records > 0 ? " match" : "") }
        var lines = [
            "\(snapshot.topic): \(summary.count) dead letter\(summary.count == 1 ? "" : "s"), oldest \(Self.time(summary.oldest) ?? "-"), newest \(Self.time(summary.newest) ?? "-")"
        ]
        let rows =
            [["COUNT", "ERROR CLASS", "EVENT TYPE", "OLDEST", "NEWEST"]]
            + summary.groups.map { group in
                [
                    String(group.count), text(group.key.errorClass) ?? "-", text(group.key.eventType) ?? "-",
                    Self.time(group.oldest) ?? "-",
                    Self.time(group.newest) ?? "-",
                ]
            }
        lines += Table.render(rows).split(separator: "\n").map { "  " + $0 }
        return lines.joined(separator: "\n")
    }

    func listJSON(_ snapshot: KafkaDeadLetterReader.TopicSnapshot, _ summary: DeadLetterSummary, suffix: String) throws -> String {
        let groups: [[String: Any]] = summary.groups.map { group in
            [
                "error_class": JSONOutput.nullable(text(group.key.errorClass)),
                "event_type": JSONOutput.nullable(text(group.key.eventType)),
                "count": group.count, "oldest": JSONOutput.nullable(Self.time(group.oldest)),
                "newest": JSONOutput.nullable(Self.time(group.newest)),
            ]
        }
        let partitions: [[String: Any]] = snapshot.partitions.sorted { $0.key < $1.key }.map { partition, marks in
            ["partition": Int(partition), "low": marks.low, "high": marks.high]
        }
        return try JSONOutput.line([
            "topic": snapshot.topic,
            "source_topic": JSONOutput.nullable(DeadLetterReplayPolicy.sourceTopic(of: snapshot.topic, suffix: suffix)),
            "exists": snapshot.exists, "count": summary.count, "oldest": JSONOutput.nullable(Self.time(summary.oldest)),
            "newest": JSONOutput.nullable(Self.time(summary.newest)), "groups": groups, "partitions": partitions,
        ])
    }

    // MARK: show

    func showText(_ r: DeadLetterRecord) -> String {
        func field(_ name: String, _ value: String) -> String {
            "  " + name.padding(toLength: 9, withPad: " ", startingAt: 0) + " " + value
        }
        var lines = [
            "\(position(r))  failed \(Self.time(r.failedTime) ?? "-")  \(text(r.errorClass) ?? "(no error class)")"
        ]
        lines.append(field("reason", text(r.errorMessage) ?? "-"))
        var source = text(r.originalTopic) ?? "-"
        if let partition = r.originalPartition { source += "[\(partition)]" }
        if let offset = r.originalOffset { source += " offset \(offset)" }
        if let time = Self.time(milliseconds: r.originalTimestamp) { source += ", record time \(time)" }
        lines.append(field("source", source))
        if r.eventID != nil || r.eventType != nil {
            lines.append(field("event", "\(text(r.eventType) ?? "(no type)") id \(text(r.eventID) ?? "-")"))
        }
        var consumer = "group \(text(r.consumerGroup) ?? "-")"
        if let attempts = r.attempts { consumer += ", attempts \(attempts)" }
        switch r.replayCount {
        case .times(let n): consumer += ", replayed \(n) time\(n == 1 ? "" : "s")"
        case .unreadable(let raw): consumer += ", replay count unreadable (\(text(raw) ?? ""))"
        }
        lines.append(field("consumer", consumer))
        lines.append(field("key", r.message.key.map { shown(bytes($0), size: $0.count) } ?? "(none)"))
        for header in r.originalHeaders {
            let value = header.value.map { shown(bytes($0), size: $0.count) } ?? "(no value)"
            lines.append(field("header", "\(text(header.key) ?? "") = \(value)"))
        }
        if r.valueOmitted {
            let size = r.valueOmittedBytes.map { "\($0) bytes" } ?? "size unknown"
            lines.append(field("value", "(not kept: \(size), too large for the dead-letter topic)"))
        } else if let value = r.message.value {
            lines.append(field("value", shown(bytes(value), size: value.count)))
        } else {
            lines.append(field("value", "(none)"))
        }
        return lines.joined(separator: "\n")
    }

    /// The text, with the size when it was cut: `(2048 bytes, cut) {"a":…`.
    private func shown(_ rendered: PrintableBytes.Rendered, size: Int) -> String {
        rendered.truncated ? "(\(size) bytes, first \(maxBytes ?? size) shown) \(rendered.text)…" : rendered.text
    }

    func showJSON(_ r: DeadLetterRecord) throws -> String {
        let key = r.message.key.map(bytes)
        let value = r.message.value.map(bytes)
        let replayCount: Any
        switch r.replayCount {
        case .times(let n): replayCount = n
        case .unreadable: replayCount = NSNull()
        }
        let headers: [[String: Any]] = r.originalHeaders.map { header in
            ["key": text(header.key) ?? "", "value": JSONOutput.nullable(header.value.map { bytes($0).text })]
        }
        return try JSONOutput.line([
            "topic": r.topic, "partition": Int(r.partition), "offset": r.offset,
            "timestamp": JSONOutput.nullable(Self.time(milliseconds: r.message.timestamp)),
            "original_topic": JSONOutput.nullable(text(r.originalTopic)),
            "original_partition": JSONOutput.nullable(r.originalPartition.map { Int($0) }),
            "original_offset": JSONOutput.nullable(r.originalOffset),
            "original_timestamp": JSONOutput.nullable(Self.time(milliseconds: r.originalTimestamp)),
            "consumer_group": JSONOutput.nullable(text(r.consumerGroup)), "error_class": JSONOutput.nullable(text(r.errorClass)),
            "error_message": JSONOutput.nullable(text(r.errorMessage)), "attempts": JSONOutput.nullable(r.attempts),
            "failed_at": JSONOutput.nullable(Self.time(r.failedTime)), "event_id": JSONOutput.nullable(text(r.eventID)),
            "event_type": JSONOutput.nullable(text(r.eventType)), "replay_count": replayCount,
            "key": JSONOutput.nullable(key?.text), "key_bytes": JSONOutput.nullable(r.message.key?.count),
            "key_truncated": key?.truncated ?? false,
            "value": JSONOutput.nullable(value?.text),
            "value_bytes": JSONOutput.nullable(r.valueOmitted ? r.valueOmittedBytes : r.message.value?.count),
            "value_truncated": value?.truncated ?? false, "value_omitted": r.valueOmitted, "headers": headers,
        ])
    }

    // MARK: replay

    struct ReplayTally {
        var replayed = 0
        var refused = 0
        var skipped = 0
        var failed = 0

        func summary(dryRun: Bool) -> String {
            dryRun
                ? "dry run: would replay \(replayed), refused \(refused), skipped \(skipped) (not matching); nothing was published"
                : "replayed \(replayed), refused \(refused), skipped \(skipped) (not matching), failed \(failed)"
        }
    }
}
