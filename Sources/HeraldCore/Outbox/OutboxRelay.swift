import Logging

/// The relay's settings (read from `HERALD_OUTBOX_*` by HeraldSettings).
public struct OutboxRelaySettings: Sendable, Hashable {
    /// Rows claimed per transaction.
    public var batchSize: Int
    /// Attempts before a row that cannot be published becomes `failed`.
    public var maxAttempts: Int
    /// Key, value and headers above this are refused before they reach the broker.
    public var maxMessageBytes: Int
    /// Whether `event_data` must be checked as JSON (a `text` column; `jsonb` always is).
    public var validateJSON: Bool
    public var topics: OutboxTopicMapping
    /// Waits after the store or the broker failed.
    public var backoff: Backoff

    public init(
        batchSize: Int = 500, maxAttempts: Int = 5, maxMessageBytes: Int = 1_000_000, validateJSON: Bool = true,
        topics: OutboxTopicMapping = OutboxTopicMapping(), backoff: Backoff = Backoff()
    ) {
        self.batchSize = batchSize
        self.maxAttempts = maxAttempts
        self.maxMessageBytes = maxMessageBytes
        self.validateJSON = validateJSON
        self.topics = topics
        self.backoff = backoff
    }
}

/// Moves outbox rows to the broker: claim a batch, turn each row into a message (or a
/// failure: no topic, not JSON, too large), publish, wait for the acknowledgements, record
/// the outcomes in the claiming transaction.
///
/// When the broker cannot be reached the claim is rolled back: nothing is marked, and the
/// rows are claimed again after a backoff. A row the broker or the relay refuses counts an
/// attempt; after `maxAttempts` it is `failed`, and the later rows of its aggregate wait
/// (the store hands out an aggregate's rows only from its oldest unprocessed one, and the
/// relay publishes an aggregate's rows one after the other) while every other aggregate
/// goes on.
public struct OutboxRelay: Sendable {
    public let store: any OutboxStore
    public let publisher: any OutboxPublisher
    public let settings: OutboxRelaySettings
    public let observer: any OutboxObserver
    let logger: Logger

    public init(
        store: any OutboxStore, publisher: any OutboxPublisher, settings: OutboxRelaySettings,
        observer: any OutboxObserver = NoOutboxObserver(), logger: Logger
    ) {
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.observer = observer
        self.logger = logger
    }

    /// What one batch or pass did.
    public struct Report: Sendable, Hashable {
        public var claimed = 0
        public var published = 0
        /// Rows that counted a failed attempt (including those now `failed`).
        public var failedAttempts = 0
        /// Rows that became `failed`.
        public var failed = 0

        public init() {}

        mutating func add(_ other: Report) {
            claimed += other.claimed
            published += other.published
            failedAttempts += other.failedAttempts
            failed += other.failed
        }
    }

    /// Claims and relays one batch. Throws when the store or the broker failed; the batch
    /// was then rolled back.
    public func relayBatch() async throws -> Report {
        let settings = self.settings
        let publisher = self.publisher
        let observer = self.observer
        let logger = self.logger
        let outcomes = try await store.claim(limit: settings.batchSize) { events in
            try await Self.deliver(events, settings: settings, publisher: publisher, observer: observer, logger: logger)
        }
        var report = Report()
        report.claimed = outcomes.count
        for outcome in outcomes {
            switch outcome {
            case .published: report.published += 1
            case .failed(_, _, let final):
                report.failedAttempts += 1
                if final { report.failed += 1 }
            }
        }
        return report
    }

    /// Relays batches until none is left to claim. Throws at the first failure (the batches
    /// before it stay committed).
    public func drain() async throws -> Report {
        var total = Report()
        while true {
            try Task.checkCancellation()
            let report = try await relayBatch()
            total.add(report)
            if report.claimed == 0 { return total }
        }
    }

    /// Drains, retrying failures with backoff: returns once nothing is left to claim. With
    /// `maxRetries`, throws the error after that many failed attempts in a row.
    public func drainRetrying(maxRetries: Int? = nil) async throws -> Report {
        var total = Report()
        var attempt = 0
        while true {
            do {
                try Task.checkCancellation()
                let report = try await relayBatch()
                total.add(report)
                if attempt > 0 {
                    logger.notice("outbox relay recovered", metadata: [OutboxLogKey.attempts: "\(attempt)"])
                    attempt = 0
                }
                if report.claimed == 0 { return total }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                attempt += 1
                if let maxRetries, attempt > maxRetries { throw error }
                let delay = settings.backoff.delay(attempt: attempt)
                observer.retrying(attempt: attempt, delay: delay, error: error)
                let transient = (error as? any ClassifiedError)?.isTransient ?? true
                logger.log(
                    level: transient ? .warning : .error,
                    transient
                        ? "outbox relay cannot reach the database or the broker; nothing was marked (rows already sent go out again), retrying"
                        : "outbox relay failed; nothing was marked (rows already sent go out again), retrying",
                    metadata: [OutboxLogKey.error: "\(error)", OutboxLogKey.attempts: "\(attempt)", OutboxLogKey.delay: "\(delay)"])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Runs until cancelled: drains, then waits for `wakeup` (signalled on NOTIFY) or
    /// `pollInterval`, whichever comes first. Every `backlogInterval` it reports failed rows
    /// and the rows they hold back.
    public func run(wakeup: Doorbell, pollInterval: Duration, backlogInterval: Duration = .seconds(60)) async throws {
        let clock = ContinuousClock()
        var nextBacklogCheck = clock.now
        while !Task.isCancelled {
            _ = try await drainRetrying()
            if clock.now >= nextBacklogCheck {
                await reportBacklog()
                nextBacklogCheck = clock.now + backlogInterval
            }
            await wakeup.wait(timeout: pollInterval)
        }
    }

    /// Logs and reports the failed rows and what waits behind them.
    public func reportBacklog() async {
        do {
            let backlog = try await store.backlog()
            observer.backlog(backlog)
            if backlog.failedRows > 0 {
                logger.warning(
                    "outbox rows failed; later events of their aggregates wait (herald outbox list --status failed; herald outbox retry)",
                    metadata: [
                        OutboxLogKey.failedRows: "\(backlog.failedRows)", OutboxLogKey.blockedAggregates: "\(backlog.blockedAggregates)",
                        OutboxLogKey.waitingRows: "\(backlog.waitingRows)",
                    ])
            }
        } catch {
            logger.debug("cannot read the outbox backlog", metadata: [OutboxLogKey.error: "\(error)"])
        }
    }

    // MARK: - One batch

    /// Turns rows into messages, publishes those that can be, and says what became of each.
    ///
    /// Rows of one aggregate go out in waves: the first row of every aggregate in the batch,
    /// then, once the broker acknowledged those, the second, and so on. A row that cannot be
    /// published (refused here or by the broker) stops its aggregate for this batch: the
    /// rows after it get no outcome and stay pending, exactly as if they had been claimed
    /// after it. A batch of distinct aggregates is one wave.
    static func deliver(
        _ events: [OutboxEvent], settings: OutboxRelaySettings, publisher: any OutboxPublisher, observer: any OutboxObserver,
        logger: Logger
    ) async throws -> [OutboxOutcome] {
        // Each aggregate's rows, in the order the store handed them out.
        var lanes: [[Int]] = []
        var laneOf: [String: Int] = [:]
        for (index, event) in events.enumerated() {
            if let lane = laneOf[event.aggregateID] {
                lanes[lane].append(index)
            } else {
                laneOf[event.aggregateID] = lanes.count
                lanes.append([index])
            }
        }
        var outcomes: [OutboxOutcome] = []
        outcomes.reserveCapacity(events.count)
        var stopped = [Bool](repeating: false, count: lanes.count)
        var wave = 0
        while true {
            // The wave's rows: the wave-th row of every aggregate still going.
            var rows: [(lane: Int, index: Int)] = []
            for (lane, indices) in lanes.enumerated() where !stopped[lane] && wave < indices.count {
                rows.append((lane, indices[wave]))
            }
            if rows.isEmpty { break }
            var messages: [OutboxMessage] = []
            var sent: [(lane: Int, index: Int)] = []
            messages.reserveCapacity(rows.count)
            for row in rows {
                let event = events[row.index]
                switch message(for: event, settings: settings) {
                case .success(let message):
                    messages.append(message)
                    sent.append(row)
                case .failure(let reason):
                    outcomes.append(failure(event, reason: reason.description, settings: settings, observer: observer, logger: logger))
                    stopped[row.lane] = true
                }
            }
            if !messages.isEmpty {
                // Throws when the broker is unreachable: the caller rolls the claim back.
                let refusals = try await publisher.publish(messages)
                var acknowledged: [OutboxEvent] = []
                acknowledged.reserveCapacity(messages.count)
                for (position, row) in sent.enumerated() {
                    let event = events[row.index]
                    if position < refusals.count, let reason = refusals[position] {
                        outcomes.append(
                            failure(
                                event, reason: "the broker refused the message: \(reason)", settings: settings, observer: observer,
                                logger: logger))
                        stopped[row.lane] = true
                    } else {
                        outcomes.append(.published(id: event.id))
                        acknowledged.append(event)
                    }
                }
                observer.published(acknowledged)
            }
            wave += 1
        }
        return outcomes
    }

    /// Why a row cannot become a message.
    public enum RowProblem: Error, CustomStringConvertible {
        case topic(OutboxTopicMapping.Failure)
        case notJSON(String)
        case tooLarge(Int, limit: Int)
        case empty(String)
        /// A column that becomes a header holds a control character (the scalar).
        case controlCharacter(String, Unicode.Scalar)
        /// `created_at` is outside the years RFC 3339 can write (0000–9999), so `ce_time` could not
        /// be a timestamp.
        case timeOutOfRange(EventTime)

        public var description: String {
            switch self {
            case .topic(let failure): failure.description
            case .notJSON(let reason): "event_data is not valid JSON (\(reason))"
            case .tooLarge(let size, let limit):
                "the message would be \(size) bytes, above the relay's limit of \(limit) bytes"
            case .empty(let column): "\(column) is empty"
            case .timeOutOfRange(let time):
                "created_at \(RFC3339.format(time)) is outside the years 0000 to 9999 that an RFC 3339 ce_time can hold"
            case .controlCharacter(let column, let scalar):
                "\(column) contains the control character U+\(String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 4)), "
                    + "which a CloudEvents header may not hold"
            }
        }
    }

    /// The Kafka record for a row: key = aggregate id, value = event data, headers `ce_id`,
    /// `ce_type`, `ce_time` (RFC 3339, UTC), `ce_source` (`herald-outbox`) and
    /// `aggregate_type`. A row whose header values are not CloudEvents strings (a control
    /// character) is refused.
    public static func message(for event: OutboxEvent, settings: OutboxRelaySettings) -> Result<OutboxMessage, RowProblem> {
        // ce_id is required and non-empty (CloudEvents); an empty id is no id.
        guard !event.id.isEmpty else { return .failure(.empty("id")) }
        guard !event.aggregateID.isEmpty else { return .failure(.empty("aggregate_id")) }
        guard !event.eventType.isEmpty else { return .failure(.empty("event_type")) }
        // CloudEvents 1.0 (type system): a String holds no control character, U+0000–U+001F or
        // U+007F–U+009F; the Kafka binding carries ce_id and ce_type as header text, and a
        // line break in one would reach every consumer that logs or forwards it.
        for (column, value) in [("id", event.id), ("event_type", event.eventType), ("aggregate_type", event.aggregateType)] {
            if let scalar = value.unicodeScalars.first(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
                return .failure(.controlCharacter(column, scalar))
            }
        }
        // PostgreSQL's timestamps run from 4713 BC to 294276 AD; ce_time is RFC 3339.
        guard RFC3339.range.contains(event.createdAt.millisecondsSinceEpoch) else { return .failure(.timeOutOfRange(event.createdAt)) }
        let topic: String
        switch settings.topics.topic(for: event.aggregateType) {
        case .success(let t): topic = t
        case .failure(let failure): return .failure(.topic(failure))
        }
        if settings.validateJSON, let problem = JSONParser.problem(inDocument: event.payload) {
            return .failure(.notJSON(problem))
        }
        let message = OutboxMessage(
            eventID: event.id, topic: topic, key: Array(event.aggregateID.utf8), value: event.payload,
            headers: [
                MessageHeader("ce_id", event.id),
                MessageHeader("ce_type", event.eventType),
                MessageHeader("ce_time", RFC3339.format(event.createdAt)),
                MessageHeader("ce_source", "herald-outbox"),
                MessageHeader("aggregate_type", event.aggregateType),
            ])
        guard message.size <= settings.maxMessageBytes else {
            return .failure(.tooLarge(message.size, limit: settings.maxMessageBytes))
        }
        return .success(message)
    }

    private static func failure(
        _ event: OutboxEvent, reason: String, settings: OutboxRelaySettings, observer: any OutboxObserver, logger: Logger
    ) -> OutboxOutcome {
        let attempts = event.attempts + 1
        let final = attempts >= settings.maxAttempts
        observer.rowFailed(event, reason: reason, final: final)
        let metadata: Logger.Metadata = [
            OutboxLogKey.eventID: "\(event.id)", OutboxLogKey.aggregateType: "\(event.aggregateType)",
            OutboxLogKey.aggregateID: "\(event.aggregateID)", OutboxLogKey.attempts: "\(attempts)", OutboxLogKey.error: "\(reason)",
        ]
        if final {
            logger.error(
                "outbox row failed for good; later events of its aggregate wait until it is retried (herald outbox retry)",
                metadata: metadata)
        } else {
            logger.warning("outbox row cannot be published; will try again", metadata: metadata)
        }
        return .failed(id: event.id, reason: reason, final: final)
    }
}

extension String {
    /// Zeros in front up to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

/// The metadata keys of the relay's log records.
public enum OutboxLogKey {
    public static let eventID = "outbox_id"
    public static let aggregateType = "aggregate_type"
    public static let aggregateID = "aggregate_id"
    public static let attempts = "attempts"
    public static let delay = "delay"
    public static let error = "error"
    public static let failedRows = "failed_rows"
    public static let blockedAggregates = "blocked_aggregates"
    public static let waitingRows = "waiting_rows"
}

extension JSONParser {
    /// nil when `bytes` hold exactly one JSON value (RFC 8259), else what is wrong.
    static func problem(inDocument bytes: [UInt8]) -> String? {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        do {
            _ = try parser.parseValue(depth: 0)
        } catch {
            return "\(error)"
        }
        parser.skipWhitespace()
        return parser.index == bytes.count ? nil : "trailing characters at byte \(parser.index)"
    }
}
