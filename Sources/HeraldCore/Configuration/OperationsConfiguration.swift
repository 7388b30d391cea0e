/// Metrics, health and logging settings (`HERALD_HTTP_*`, `HERALD_LAG_*`, `HERALD_LOG_MASK_EMAILS`).
public struct OperationsConfiguration: Sendable {
    /// Where `/metrics`, `/healthz` and `/readyz` listen (`HERALD_HTTP_ADDRESS`); port 0 picks a
    /// free port, which is logged.
    public var httpHost = "127.0.0.1"
    public var httpPort = 9464
    /// How often consumer lag, the mail queue and readiness are sampled (`HERALD_LAG_INTERVAL`).
    public var sampleInterval: Duration = .seconds(5)
    /// How long each readiness check may take before it counts as failed (`HERALD_READINESS_TIMEOUT`).
    public var readinessTimeout: Duration = .seconds(2)
    /// `/healthz` fails when a loop has not turned for this long (`HERALD_HEALTH_STALL_TIMEOUT`).
    public var stallTimeout: Duration = .seconds(60)
    /// Replace the local part of email addresses in logs (`HERALD_LOG_MASK_EMAILS`).
    public var maskEmails = false

    public init() {}

    static func load(_ reader: EnvironmentReader) throws(ConfigurationError) -> OperationsConfiguration {
        var c = OperationsConfiguration()
        if let address = try reader.string("HERALD_HTTP_ADDRESS") {
            guard let (host, port) = parseHostPort(address) else {
                throw ConfigurationError(
                    setting: "HERALD_HTTP_ADDRESS", problem: "expected host:port such as 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464")
            }
            c.httpHost = host
            c.httpPort = port
        }
        c.sampleInterval = try reader.duration("HERALD_LAG_INTERVAL") ?? c.sampleInterval
        c.readinessTimeout = try reader.duration("HERALD_READINESS_TIMEOUT") ?? c.readinessTimeout
        c.stallTimeout = try reader.duration("HERALD_HEALTH_STALL_TIMEOUT") ?? c.stallTimeout
        c.maskEmails = try reader.boolean("HERALD_LOG_MASK_EMAILS") ?? c.maskEmails
        return c
    }

    /// `host:port`, `[v6]:port`; port 0...65535.
    static func parseHostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" }) else { return nil }
        return (host, port)
    }
}
