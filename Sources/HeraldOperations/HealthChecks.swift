import Foundation
import Synchronization

/// The outcome of one health or readiness check.
public struct CheckResult: Sendable {
    public var ok: Bool
    /// What was seen, for the JSON body: never a secret.
    public var detail: String

    public init(ok: Bool, detail: String) {
        self.ok = ok
        self.detail = detail
    }
}

/// A named check run by `/healthz` or `/readyz`.
public struct HealthCheck: Sendable {
    public let name: String
    public let run: @Sendable () async -> CheckResult

    public init(_ name: String, _ run: @escaping @Sendable () async -> CheckResult) {
        self.name = name
        self.run = run
    }
}

/// Runs checks concurrently, each bounded by `timeout`. A check that does not answer in time
/// fails; it is not awaited further (a blocking client call may still be running on its own
/// thread), so a dead dependency cannot hang the endpoint.
public struct HealthReport: Sendable {
    public var results: [(name: String, result: CheckResult)]
    public var ok: Bool { results.allSatisfy(\.result.ok) }

    public static func run(_ checks: [HealthCheck], timeout: Duration) async -> HealthReport {
        var results: [(String, CheckResult)] = []
        await withTaskGroup(of: (Int, CheckResult).self) { group in
            for (i, check) in checks.enumerated() {
                group.addTask { (i, await bounded(check, timeout: timeout)) }
            }
            for await (i, result) in group { results.append((checks[i].name, result)) }
        }
        let order = Dictionary(uniqueKeysWithValues: checks.enumerated().map { ($1.name, $0) })
        return HealthReport(results: results.sorted { order[$0.0, default: 0] < order[$1.0, default: 0] }.map { ($0.0, $0.1) })
    }

    private static func bounded(_ check: HealthCheck, timeout: Duration) async -> CheckResult {
        let once = Once()
        return await withCheckedContinuation { (c: CheckedContinuation<CheckResult, Never>) in
            once.set(c)
            let work = Task {
                let result = await check.run()
                once.take()?.resume(returning: result)
            }
            Task {
                try? await Task.sleep(for: timeout)
                if let c = once.take() {
                    work.cancel()
                    c.resume(returning: CheckResult(ok: false, detail: "no answer within \(timeout)"))
                }
            }
        }
    }

    /// `{"ok":false,"checks":{"redis":{"ok":false,"detail":"..."},...}}`
    public func json() -> [UInt8] {
        var checks: [String: Any] = [:]
        for (name, result) in results { checks[name] = ["ok": result.ok, "detail": result.detail] }
        let object: [String: Any] = ["ok": ok, "checks": checks]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Array(data) + [0x0A]
    }
}

/// A continuation resumed by whichever of two tasks comes first.
private final class Once: Sendable {
    private let continuation = Mutex<CheckedContinuation<CheckResult, Never>?>(nil)

    func set(_ c: CheckedContinuation<CheckResult, Never>) {
        continuation.withLock { $0 = c }
    }

    func take() -> CheckedContinuation<CheckResult, Never>? {
        continuation.withLock { $0.take() }
    }
}
