import HeraldCore

/// `herald dlq list`'s figures for one dead-letter topic: how many letters, grouped by error
/// class and event type, with the oldest and newest time of failure of each group and of the
/// whole (`DeadLetterRecord.failedTime`).
public struct DeadLetterSummary: Sendable {
    /// One (error class, event type) pair; either may be missing from a letter.
    public struct Key: Hashable, Sendable, Comparable {
        public let errorClass: String?
        public let eventType: String?

        public init(errorClass: String?, eventType: String?) {
            self.errorClass = errorClass
            self.eventType = eventType
        }

        /// By class, then type, a missing one last.
        public static func < (a: Key, b: Key) -> Bool {
            func rank(_ s: String?) -> (Int, String) { s.map { (0, $0) } ?? (1, "") }
            let (ac, at, bc, bt) = (rank(a.errorClass), rank(a.eventType), rank(b.errorClass), rank(b.eventType))
            return ac != bc ? ac < bc : at < bt
        }
    }

    public struct Group: Sendable {
        public let key: Key
        public fileprivate(set) var count = 0
        public fileprivate(set) var oldest: EventTime?
        public fileprivate(set) var newest: EventTime?

        fileprivate mutating func add(_ time: EventTime?) {
            count += 1
            guard let time else { return }
            if oldest.map({ time < $0 }) ?? true { oldest = time }
            if newest.map({ time > $0 }) ?? true { newest = time }
        }
    }

    public private(set) var total = Group(key: Key(errorClass: nil, eventType: nil))
    private var byKey: [Key: Group] = [:]

    public init() {}

    public var count: Int { total.count }
    public var oldest: EventTime? { total.oldest }
    public var newest: EventTime? { total.newest }

    /// The groups, largest first (ties by class, then type).
    public var groups: [Group] {
        byKey.values.sorted { a, b in a.count != b.count ? a.count > b.count : a.key < b.key }
    }

    public mutating func add(_ record: DeadLetterRecord) {
        let key = Key(errorClass: record.errorClass, eventType: record.eventType)
        let time = record.failedTime
        total.add(time)
        byKey[key, default: Group(key: key)].add(time)
    }
}
