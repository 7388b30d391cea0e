import struct Foundation.Date

extension EventTime {
    /// The wall-clock time now.
    public static func now() -> EventTime {
        EventTime(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
