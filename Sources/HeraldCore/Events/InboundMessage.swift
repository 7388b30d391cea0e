/// One header of a Kafka record. Values are bytes; a header may carry no value at all.
public struct MessageHeader: Hashable, Sendable {
    public var key: String
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = Array(value.utf8)
    }

    public var stringValue: String? { value.map { String(decoding: $0, as: UTF8.self) } }
}

/// A record as it arrived from the broker, before any interpretation.
public struct InboundMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch, when the broker or producer set one.
    public var timestamp: Int64?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [MessageHeader]

    public init(
        topic: String, partition: Int32, offset: Int64, timestamp: Int64? = nil, key: [UInt8]? = nil,
        value: [UInt8]?, headers: [MessageHeader] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// The last header with this key, as most Kafka clients resolve duplicates.
    public func header(_ key: String) -> MessageHeader? {
        headers.last { $0.key == key }
    }
}

/// A record Herald produces (dead letters, `herald publish`, `herald dlq replay`).
public struct OutboundRecord: Sendable {
    public var topic: String
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [MessageHeader]
    /// The partition to produce to; nil lets the producer's partitioner choose from the key.
    public var partition: Int32?
    /// The record's timestamp, milliseconds since the epoch; nil: the time it is produced.
    public var timestamp: Int64?

    public init(
        topic: String, key: [UInt8]?, value: [UInt8]?, headers: [MessageHeader] = [], partition: Int32? = nil,
        timestamp: Int64? = nil
    ) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
        self.timestamp = timestamp
    }
}
