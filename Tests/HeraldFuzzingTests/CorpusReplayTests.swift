import Foundation
import HeraldFuzzing
import Testing

/// Every file of the committed fuzzing corpus (`Tests/Fuzz/Corpus/<target>`: the seeds, and
/// the inputs libFuzzer found that once crashed or broke an invariant, `regression-*`) keeps
/// every invariant of its target. The same harnesses run under libFuzzer with `make fuzz`.
@Suite struct CorpusReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// How far each seed must get, so that the seeds keep reaching the deep checks (a seed
    /// refused at the door would leave the fuzzer to find the way in by itself).
    static let seedOutcomes: [String: String] = [
        "envelope/seed-not-an-object": "rejected: NotJSON", "time/seed-epoch-negative": "not RFC 3339",
        "time/seed-epoch-seconds": "not RFC 3339", "outbox/seed-empty-key": "refused: aggregate_id is empty",
        "outbox/seed-not-json": "refused: event_data is not valid JSON", "outbox/seed-size-limit": "refused: the message would be",
        "oauth2/seed-invalid-client": "refused", "oauth2/seed-server-error": "unavailable", "oauth2/seed-not-json": "unavailable",
    ]
    static let defaultOutcome: [FuzzTarget: String] = [
        .envelope: "accepted", .time: "RFC 3339", .configuration: "loaded", .mail: "rendered", .outbox: "published to",
        .oauth2: "token",
    ]

    @Test(arguments: FuzzTarget.allCases)
    func corpusKeepsTheInvariants(_ target: FuzzTarget) throws {
        let harness = try FuzzHarness(target, templatesDirectory: Self.root.appendingPathComponent("Templates").path)
        let directory = Self.root.appendingPathComponent("Tests/Fuzz/Corpus/\(target.rawValue)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(files.contains { $0.hasPrefix("seed-") }, "no seeds for \(target.rawValue)")
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(file)))
            let name = "\(target.rawValue)/\(file)"
            do {
                let outcome = try harness.run(bytes)
                if file.hasPrefix("seed-") {
                    let expected = Self.seedOutcomes[name] ?? Self.defaultOutcome[target]!
                    #expect(outcome.hasPrefix(expected), "\(name): \(outcome)")
                }
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }
}
