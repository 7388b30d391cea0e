import HeraldCore

/// How a partition's consumption looks on two lag samples a window apart (Burrow's idea):
/// what `herald lag` prints per partition, the worst one for the whole group.
public enum LagStatus: String, Sendable, Comparable, CaseIterable {
    /// No lag, or the committed offset moves and lag does not grow.
    case ok = "OK"
    /// The committed offset moves but lag grew.
    case lagging = "LAGGING"
    /// Lag, and the committed offset did not move.
    case stalled = "STALLED"
    /// Lag, and the group has never committed on the partition.
    case stopped = "STOPPED"

    private var rank: Int {
        switch self {
        case .ok: 0
        case .lagging: 1
        case .stalled: 2
        case .stopped: 3
        }
    }

    public static func < (a: LagStatus, b: LagStatus) -> Bool { a.rank < b.rank }

    /// The status of one partition from two samples, `first` taken a window before `last`.
    public static func judge(first: PartitionLag, last: PartitionLag) -> LagStatus {
        if last.lagMessages == 0 { return .ok }
        guard let committed = last.committed else { return .stopped }
        if first.committed == committed { return .stalled }
        return last.lagMessages > first.lagMessages ? .lagging : .ok
    }
}

/// A group's lag judged on two samples `window` apart: each partition's latest figures and
/// status, the totals, and the worst status.
public struct LagReport: Sendable {
    public let group: String
    public let window: Duration
    public let rows: [(lag: PartitionLag, status: LagStatus)]

    /// `first` and `last` list the same partitions in the same order.
    public init(group: String, window: Duration, first: [PartitionLag], last: [PartitionLag]) {
        self.group = group
        self.window = window
        rows = zip(first, last).map { ($1, LagStatus.judge(first: $0, last: $1)) }
    }

    public var totalLag: Int64 { rows.reduce(0) { $0 + $1.lag.lagMessages } }
    public var maxLagSeconds: Double { rows.map(\.lag.lagSeconds).max() ?? 0 }
    /// The worst partition's status; OK with no partitions.
    public var status: LagStatus { rows.map(\.status).max() ?? .ok }
}
