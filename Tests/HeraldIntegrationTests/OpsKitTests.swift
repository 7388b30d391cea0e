import Foundation
import Testing

/// ops/ cannot run here (no Docker engine): its files are checked instead.
@Suite("ops kit")
struct OpsKitTests {
    static let checker = HeraldBinary.repository + "/scripts/check-ops-kit.py"

    @Test("the alert rules pass promtool check rules (Debian's prometheus package)")
    func promtool() throws {
        let output = try OperationsProbe.run(
            "/usr/bin/promtool", ["check", "rules", HeraldBinary.repository + "/ops/prometheus/alerts.yml"], input: nil)
        #expect(output.contains("SUCCESS"), "\(output)")
    }

    @Test("compose, Kubernetes, Prometheus and Grafana files parse; images pinned; ports and probes consistent")
    func filesParseAndAgree() throws {
        let output = try OperationsProbe.run("/usr/bin/python3", [Self.checker], input: nil)
        #expect(output.contains(" 0 failed"), "\(output)")
    }
}
