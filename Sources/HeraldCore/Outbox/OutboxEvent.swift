/// One row of the API's transactional outbox, as the relay reads it.
public struct OutboxEvent: Sendable, Hashable {
    /// The row's primary key in its text form (a UUID in docs/integration.md's table); sent as `ce_id`.
    public let id: String
    public let aggregateType: String
    /// The Kafka key: every event of one aggregate goes to one partition, in order.
    public let aggregateID: String
    public let eventType: String
    /// The event's JSON document (`event_data`), as stored.
    public let payload: [UInt8]
    /// When the API wrote the row (`created_at`).
    public let createdAt: EventTime
    /// Failed attempts so far (`retry_count`).
    public let attempts: Int

    public init(
        id: String, aggregateType: String, aggregateID: String, eventType: String, payload: [UInt8], createdAt: EventTime,
        attempts: Int
    ) {
        self.id = id
        self.aggregateType = aggregateType
        self.aggregateID = aggregateID
        self.eventType = eventType
        self.payload = payload
        self.createdAt = createdAt
        self.attempts = attempts
    }
}

/// The record the relay asks a publisher to deliver for one outbox row.
public struct OutboxMessage: Sendable, Hashable {
    public let eventID: String
    public let topic: String
    public let key: [UInt8]
    public let value: [UInt8]
    public let headers: [MessageHeader]

    public init(eventID: String, topic: String, key: [UInt8], value: [UInt8], headers: [MessageHeader]) {
        self.eventID = eventID
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// Key, value and headers: what counts against the broker's message size limit.
    public var size: Int {
        key.count + value.count + headers.reduce(0) { $0 + $1.key.utf8.count + ($1.value?.count ?? 0) }
    }
}

/// What became of one claimed row, recorded in the transaction that claimed it.
public enum OutboxOutcome: Sendable, Hashable {
    /// The broker acknowledged it: the row becomes `processed`.
    case published(id: String)
    /// It could not be published: `retry_count` + 1 and `error_message` = `reason`; the row
    /// becomes `failed` when `final` (attempts exhausted), else stays `pending`.
    case failed(id: String, reason: String, final: Bool)

    public var id: String {
        switch self {
        case .published(let id), .failed(let id, _, _): id
        }
    }
}

/// Rows whose aggregate waits behind a `failed` row.
public struct OutboxBacklog: Sendable, Hashable {
    /// Failed rows (each blocks its aggregate).
    public let failedRows: Int
    /// Aggregates with a failed row.
    public let blockedAggregates: Int
    /// Pending rows that wait behind a failed row of their aggregate.
    public let waitingRows: Int

    public init(failedRows: Int, blockedAggregates: Int, waitingRows: Int) {
        self.failedRows = failedRows
        self.blockedAggregates = blockedAggregates
        self.waitingRows = waitingRows
    }
}
