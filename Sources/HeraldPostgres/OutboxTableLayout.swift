import HeraldCore

/// Where the API's outbox table lives and what its columns are called. Every name is an
/// identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes), always double-quoted in SQL, so
/// it is matched exactly as written.
public struct OutboxTableLayout: Sendable, Hashable {
    /// The columns the relay uses, by their default names (docs/integration.md's table).
    public enum Column: String, Sendable, CaseIterable, Hashable {
        case id
        case aggregateType = "aggregate_type"
        case aggregateID = "aggregate_id"
        case eventType = "event_type"
        case eventData = "event_data"
        case status
        case retryCount = "retry_count"
        case createdAt = "created_at"
        case processedAt = "processed_at"
        case errorMessage = "error_message"
    }

    /// nil: the connection's `search_path` decides.
    public var schema: String?
    public var table: String
    /// Only the renamed columns; the others keep their default names.
    public var renamed: [Column: String]

    public init(schema: String? = nil, table: String = "outbox_events", renamed: [Column: String] = [:]) {
        self.schema = schema
        self.table = table
        self.renamed = renamed
    }

    public func name(of column: Column) -> String {
        renamed[column] ?? column.rawValue
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, 1 to 63 bytes: safe to double-quote into SQL.
    public static func isIdentifier(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func isLetter(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F }
        return isLetter(first) && bytes.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}
