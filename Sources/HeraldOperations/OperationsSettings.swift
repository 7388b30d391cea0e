/// Metrics, health and log settings (`HERALD_HTTP_ADDRESS`, `HERALD_LAG_INTERVAL`,
/// `HERALD_READINESS_TIMEOUT`, `HERALD_HEALTH_STALL_TIMEOUT`, `HERALD_LOG_MASK_EMAILS`).
public struct OperationsSettings: Sendable {
    /// Where `/metrics`, `/healthz` and `/readyz` listen; port 0 picks a free port, which is
    /// logged.
    public var httpHost = "127.0.0.1"
    public var httpPort = 9464
    /// How often consumer lag, the mail queue and readiness are sampled.
    public var sampleInterval: Duration = .seconds(5)
    /// How long each readiness check may take before it counts as failed.
    public var readinessTimeout: Duration = .seconds(2)
    /// `/healthz` fails when a loop has not turned for this long.
    public var stallTimeout: Duration = .seconds(60)
    /// Replace the local part of email addresses in logs.
    public var maskEmails = false

    public init() {}

    /// `host:port`, `[v6]:port`; port 0...65535.
    public static func parseHostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" }) else { return nil }
        return (host, port)
    }
}
