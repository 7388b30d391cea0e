import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldRuntime
import HeraldSettings
import Logging

/// `herald dlq …`: the dead letters, listed, shown and replayed to the topics they came from.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, show and replay dead letters (the records Herald sent to <topic>.dlq).",
        discussion: """
            Without --topic, every dead-letter topic of the topics `herald run` consumes (HERALD_USER_TOPIC and \
            HERALD_AUTH_TOPIC followed by HERALD_DLQ_SUFFIX). Each command reads the partitions directly from the \
            low watermark to the high watermark it saw at start, beside a running Herald: it joins no consumer \
            group and commits nothing, and asks for no confirmation. \
            Brokers: --brokers, else HERALD_KAFKA_BROKERS, else the address the embedded broker wrote to \
            HERALD_EMBEDDED_BOOTSTRAP_FILE (default var/kafka-bootstrap); exit 75 when none answers within 5 s.
            """,
        subcommands: [List.self, Show.self, Replay.self])

    /// The options every `herald dlq` command takes: where, and which letters.
    struct Selection: ParsableArguments {
        @Option(help: "Bootstrap servers (host:port,...).")
        var brokers: String?

        @Option(
            name: .customLong("topic"),
            help:
                "A dead-letter topic, or a consumed topic whose dead letters to read (repeatable; default: those of every consumed topic).")
        var topics: [String] = []

        @Option(
            name: .customLong("class"),
            help: "Only this error class (repeatable): \(Rejection.Class.allCases.map(\.rawValue).joined(separator: ", ")).")
        var errorClasses: [String] = []

        @Option(name: .customLong("type"), help: "Only this event type (herald.event.type; repeatable).")
        var eventTypes: [String] = []

        @Option(
            help:
                "Only letters dead-lettered at or after this time: RFC 3339 (2026-05-01T12:00:00Z) or a duration back from now (30m, 2h, 7d)."
        )
        var since: String?

        @Option(help: "Only this partition of the dead-letter topic.")
        var partition: Int32?

        @Option(help: "Only the letter at this offset of --partition (with one --topic).")
        var offset: Int64?

        func validate() throws {
            for topic in topics where !isTopicName(topic) {
                throw ValidationError(
                    "--topic: \(topic.debugDescription) is not a topic name (letters, digits, '.', '_', '-'; at most 249)")
            }
            for name in errorClasses where DeadLetterFilter.errorClass(named: name) == nil {
                throw ValidationError(
                    "--class: no error class \(name.debugDescription); one of \(Rejection.Class.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            for type in eventTypes where type.isEmpty {
                throw ValidationError("--type: an event type cannot be empty")
            }
            if let since, DeadLetterFilter.since(parsing: since, now: EventTime.now()) == nil {
                throw ValidationError(
                    "--since: \(since.debugDescription) is neither an RFC 3339 time (2026-05-01T12:00:00Z) nor a duration (30m, 2h, 7d)")
            }
            if let partition, partition < 0 { throw ValidationError("--partition: must be 0 or more") }
            if let offset {
                guard offset >= 0 else { throw ValidationError("--offset: must be 0 or more") }
                guard partition != nil, Set(topics).count == 1 else {
                    throw ValidationError("--offset: needs --partition and one --topic (an offset names one letter of one partition)")
                }
            }
        }

        /// The filter, `--since` counted back from now.
        func filter() -> DeadLetterFilter {
            DeadLetterFilter(
                errorClasses: Set(errorClasses.compactMap(DeadLetterFilter.errorClass(named:))), eventTypes: Set(eventTypes),
                since: since.flatMap { DeadLetterFilter.since(parsing: $0, now: EventTime.now()) }, partition: partition, offset: offset)
        }

        /// The dead-letter topics to read: each --topic as given when it ends with the suffix,
        /// else its dead-letter topic; without --topic, those of the consumed topics.
        func deadLetterTopics(_ kafka: KafkaSettings) -> [String] {
            let named = topics.isEmpty ? [kafka.userTopic, kafka.authTopic] : topics
            var seen: Set<String> = []
            return named.map { $0.hasSuffix(kafka.deadLetterSuffix) ? $0 : kafka.deadLetterTopic(for: $0) }.filter {
                seen.insert($0).inserted
            }
        }
    }

    /// How record contents are printed (`show`).
    struct Display: ParsableArguments {
        @Option(help: "Show at most this many bytes of each key and value, escaped (0: all of it).")
        var maxBytes = 1024

        @Flag(help: "Mask email addresses in what is shown (a***@example.com); on when HERALD_LOG_MASK_EMAILS=true.")
        var maskEmails = false

        func validate() throws {
            guard maxBytes >= 0 else { throw ValidationError("--max-bytes: must be 0 (no limit) or more") }
        }
    }

    /// What each command starts with: the settings, a reachable broker, the dead-letter
    /// topics and their watermarks, all captured before anything is read.
    struct Session {
        let settings: HeraldSettings
        let address: Environment.BrokerAddress
        let reader: KafkaDeadLetterReader
        let snapshots: [KafkaDeadLetterReader.TopicSnapshot]
        let filter: DeadLetterFilter

        static func open(_ selection: Selection, client: String) async throws -> Session {
            let settings = try Environment.settings()
            let kafka = settings.kafka
            HeraldLogging.bootstrap(format: settings.log.format, level: "error")
            let address = try Environment.brokers(kafka, override: selection.brokers)
            // The same secret properties as `herald run`: a refused one is named, its value never shown.
            let reader = try KafkaDeadLetterReader(
                bootstrapServers: address.servers, properties: kafka.properties, secretProperties: kafka.secretProperties,
                logger: Logger(label: "herald.dlq.\(client)"))
            try await Environment.requireReachable(address, kafka)
            let snapshots = try await reader.snapshot(selection.deadLetterTopics(kafka))
            for snapshot in snapshots where !snapshot.exists {
                FileHandle.standardError.write(Data("herald: \(snapshot.topic) does not exist: no dead letters there\n".utf8))
            }
            return Session(settings: settings, address: address, reader: reader, snapshots: snapshots, filter: selection.filter())
        }

        func display(_ options: Display) -> DeadLetterView {
            DeadLetterView(
                maxBytes: options.maxBytes == 0 ? nil : options.maxBytes,
                maskEmails: options.maskEmails || settings.operations.maskEmails)
        }
    }

    /// Thrown by a `read` body to stop reading early (`show --limit`).
    struct EnoughRead: Error {}

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Count the dead letters of each topic by error class and event type, with the oldest and newest.",
            discussion: """
                Times are when Herald dead-lettered each record (herald.failed.at, else the letter's timestamp). \
                --json prints one object per dead-letter topic.
                """)

        @OptionGroup var selection: Selection

        @Flag(help: "One JSON object per dead-letter topic.")
        var json = false

        func run() async throws {
            let session = try await Session.open(selection, client: "list")
            let view = DeadLetterView(maxBytes: nil, maskEmails: session.settings.operations.maskEmails)
            do {
                var reports: [(KafkaDeadLetterReader.TopicSnapshot, DeadLetterSummary)] = []
                for snapshot in session.snapshots {
                    var summary = DeadLetterSummary()
                    try await session.reader.read(snapshot, filter: session.filter) { records in
                        for record in records where session.filter.matches(record) { summary.add(record) }
                    }
                    reports.append((snapshot, summary))
                }
                await session.reader.close()
                let suffix = session.settings.kafka.deadLetterSuffix
                for (snapshot, summary) in reports {
                    print(json ? try view.listJSON(snapshot, summary, suffix: suffix) : view.listText(snapshot, summary))
                }
            } catch {
                await session.reader.close()
                throw error
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print dead letters: where each came from, why it failed, its key, headers and value.",
            discussion: """
                Each partition's letters in offset order, up to --limit. Keys, header values and values are \
                escaped: control characters and bytes that are not UTF-8 as \\xNN, terminal and bidirectional \
                controls as \\u{NNNN}, a backslash as \\\\; longer than --max-bytes, they are cut and their size given. \
                --json prints one object per letter.
                """)

        @OptionGroup var selection: Selection
        @OptionGroup var display: Display

        @Option(help: "Show at most this many letters.")
        var limit = 50

        @Flag(help: "One JSON object per letter.")
        var json = false

        func validate() throws {
            guard limit >= 1 else { throw ValidationError("--limit: must be at least 1") }
        }

        func run() async throws {
            let session = try await Session.open(selection, client: "show")
            let view = session.display(display)
            var shown = 0
            var more = false
            do {
                topics: for snapshot in session.snapshots {
                    do {
                        try await session.reader.read(snapshot, filter: session.filter) { records in
                            for record in records where session.filter.matches(record) {
                                guard shown < limit else {
                                    more = true
                                    throw EnoughRead()
                                }
                                print(json ? try view.showJSON(record) : view.showText(record) + "\n")
                                shown += 1
                            }
                        }
                    } catch is EnoughRead {
                        break topics
                    }
                }
                await session.reader.close()
            } catch {
                await session.reader.close()
                throw error
            }
            if more {
                FileHandle.standardError.write(Data("herald: \(shown) letters shown; more match (--limit \(limit))\n".utf8))
            } else if shown == 0 {
                FileHandle.standardError.write(Data("herald: no dead letter matches\n".utf8))
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish dead letters back to the topics they came from, for Herald to process again.",
            discussion: """
                Each selected letter goes to its herald.original.topic, to the partition it was consumed from, \
                with its original key, value, headers and timestamp (the herald.* headers removed) and \
                herald.replay.count one more than it carried. Refused, with the reason: a letter already replayed --max-replays times \
                (a record that keeps failing does not go round for ever), one whose value was not kept \
                (herald.value.omitted), one whose original topic is not the one its dead-letter topic belongs to. \
                The letters stay in the dead-letter topic: replaying them again publishes them again. \
                Waits for every acknowledgement; exit 1 when any publish failed. --dry-run publishes nothing.
                """)

        @OptionGroup var selection: Selection

        @Flag(help: "Print what would be replayed and refused; publish nothing.")
        var dryRun = false

        @Option(help: "Refuse letters already replayed this many times.")
        var maxReplays = 3

        func validate() throws {
            guard maxReplays >= 1 else { throw ValidationError("--max-replays: must be at least 1") }
        }

        func run() async throws {
            let session = try await Session.open(selection, client: "replay")
            let kafka = session.settings.kafka
            let policy = DeadLetterReplayPolicy(maxReplays: maxReplays, suffix: kafka.deadLetterSuffix)
            let view = DeadLetterView(maxBytes: nil, maskEmails: session.settings.operations.maskEmails)
            let producer: KafkaProducer?
            do {
                producer =
                    dryRun
                    ? nil
                    : try KafkaProducer(
                        bootstrapServers: session.address.servers, properties: kafka.properties,
                        secretProperties: kafka.secretProperties, clientID: "herald-dlq-replay",
                        flushTimeout: kafka.shutdownTimeout, logger: Logger(label: "herald.dlq.replay"))
            } catch {
                await session.reader.close()
                throw error
            }
            var tally = DeadLetterView.ReplayTally()
            var failure: (any Error)?
            do {
                for snapshot in session.snapshots {
                    try await session.reader.read(snapshot, filter: session.filter) { records in
                        var outgoing: [(DeadLetterRecord, OutboundRecord, Int)] = []
                        for record in records {
                            guard session.filter.matches(record) else {
                                tally.skipped += 1
                                continue
                            }
                            switch policy.decide(record) {
                            case .refuse(let reason):
                                tally.refused += 1
                                print("refused \(view.position(record)): \(reason)")
                            case .replay(let outbound, let count):
                                outgoing.append((record, outbound, count))
                            }
                        }
                        guard let producer else {
                            for (record, outbound, count) in outgoing {
                                tally.replayed += 1
                                print("would replay \(view.position(record)) → \(view.target(outbound)) (replay \(count))")
                            }
                            return
                        }
                        // Every acknowledgement of a batch before the next is read.
                        let errors = try await producer.deliver(outgoing.map(\.1))
                        for ((record, outbound, count), error) in zip(outgoing, errors) {
                            if let error {
                                tally.failed += 1
                                print("failed \(view.position(record)) → \(view.target(outbound)): \(error)")
                            } else {
                                tally.replayed += 1
                                print("replayed \(view.position(record)) → \(view.target(outbound)) (replay \(count))")
                            }
                        }
                    }
                }
            } catch {
                failure = error
            }
            await producer?.close()
            await session.reader.close()
            print(tally.summary(dryRun: dryRun))
            if let failure { throw failure }
            if tally.failed > 0 {
                throw HeraldCLIError("\(tally.failed) letter(s) were not replayed: the broker did not acknowledge them (see above)")
            }
        }
    }
}
