import ArgumentParser
import Foundation
import HeraldCore

/// Herald's JSON parser (`JSONObject`) against Foundation's `JSONSerialization` and
/// `JSONDecoder`, on the envelope decode path: the same records, the same work (parse, then
/// read the envelope's and the handlers' fields as strings), in one process, one after the
/// other in each of `rounds` rounds, best round kept. Then the whole `EnvelopeDecoder.decode` (validation included),
/// for scale. No I/O: it measures the parse alone.
struct BenchJSONCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json", abstract: "Benchmark JSON parsing on the envelope path: Herald's parser vs Foundation's.")

    @Option(help: "Records per round.") var records = 200_000
    @Option(help: "Rounds; the best is reported.") var rounds = 5

    /// The fields the decoder and the standard handlers read.
    static let fields = ["event_type", "event_id", "occurred_at", "role", "user_id", "email", "username", "locale"]

    /// The same fields, for `JSONDecoder`.
    struct Fields: Decodable {
        var event_type: String?
        var event_id: String?
        var occurred_at: String?
        var role: String?
        var user_id: String?
        var email: String?
        var username: String?
        var locale: String?
    }

    /// A mix like a production stream: role and user revocations, registrations, mail requests.
    static func workload(_ count: Int) -> [[UInt8]] {
        (0..<count).map { i in
            let id = "evt-\(i)-6f1e8f5d4a579a43"
            let time = "2024-05-01T12:\(String(format: "%02d", i % 60)):00.123Z"
            let text: String
            switch i % 4 {
            case 0:
                text = #"{"event_type":"RoleDeleted","event_id":"\#(id)","occurred_at":"\#(time)","role":"editor-\#(i % 97)"}"#
            case 1:
                text =
                    #"{"event_type":"UserDeleted","event_id":"\#(id)","occurred_at":"\#(time)","user_id":"u-\#(i)","email":"ada.\#(i)@example.com"}"#
            case 2:
                text =
                    #"{"event_type":"UserRegistered","event_id":"\#(id)","occurred_at":"\#(time)","user_id":"u-\#(i)","email":"ada.\#(i)@example.com","username":"ada\#(i)","locale":"pt-BR","source":{"ip":"192.0.2.1","agent":"Mozilla/5.0"}}"#
            default:
                text =
                    #"{"event_type":"PasswordResetRequested","event_id":"\#(id)","occurred_at":"\#(time)","user_id":"u-\#(i)","email":"Zoë.\#(i)@example.com","username":"Zo\u00eb","locale":"en"}"#
            }
            return Array(text.utf8)
        }
    }

    struct Result {
        let name: String
        let seconds: Double
        let checksum: Int
    }

    func run() throws {
        guard records > 0, rounds > 0 else { throw ValidationError("--records and --rounds must be positive") }
        let input = Self.workload(records)
        let datas = input.map { Data($0) }
        let decoder = JSONDecoder()
        let envelopes = EnvelopeDecoder(maxClockSkew: .seconds(86_400 * 365 * 100))

        let stacks: [(String, () throws -> Int)] = [
            (
                "Herald JSONObject",
                {
                    var sum = 0
                    for bytes in input {
                        let object = try JSONObject(parsing: bytes)
                        for field in Self.fields { sum &+= try object.string(field)?.utf8.count ?? 0 }
                    }
                    return sum
                }
            ),
            (
                "Foundation JSONSerialization",
                {
                    var sum = 0
                    for data in datas {
                        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                            throw BenchError("not an object")
                        }
                        for field in Self.fields { sum &+= (object[field] as? String)?.utf8.count ?? 0 }
                    }
                    return sum
                }
            ),
            (
                "Foundation JSONDecoder",
                {
                    var sum = 0
                    for data in datas {
                        let f = try decoder.decode(Fields.self, from: data)
                        for value in [f.event_type, f.event_id, f.occurred_at, f.role, f.user_id, f.email, f.username, f.locale] {
                            sum &+= value?.utf8.count ?? 0
                        }
                    }
                    return sum
                }
            ),
            (
                "EnvelopeDecoder.decode (JSONObject + validation)",
                {
                    var sum = 0
                    for (offset, bytes) in input.enumerated() {
                        let envelope = try envelopes.decode(
                            InboundMessage(topic: "auth_service_topic", partition: 0, offset: Int64(offset), value: bytes))
                        sum &+= envelope.metadata.id.rawValue.utf8.count
                    }
                    return sum
                }
            ),
        ]

        // Rounds outside, stacks inside: each stack sees the machine in the same states
        // (a shared machine's load, caches warmed by the previous stack), best round kept.
        var best = [Double](repeating: .infinity, count: stacks.count)
        var checksums = [Int](repeating: 0, count: stacks.count)
        for _ in 0..<rounds {
            for (index, (_, body)) in stacks.enumerated() {
                let start = ContinuousClock.now
                checksums[index] = try body()
                let elapsed = ContinuousClock.now - start
                best[index] = min(best[index], Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
        }
        let results = stacks.indices.map { Result(name: stacks[$0].0, seconds: best[$0], checksum: checksums[$0]) }
        // The three parsers read the same text: their checksums must agree.
        let sums = Set(results.prefix(3).map(\.checksum))
        guard sums.count == 1 else { throw BenchError("the parsers disagree: \(results.map(\.checksum))") }

        let herald = results[0].seconds
        print("JSON on the envelope path: \(records) records (4 event shapes, 90–330 bytes), best of \(rounds)")
        print("| stack | records/s | ns/record | time vs Herald's parser |")
        print("|---|---:|---:|---:|")
        for r in results {
            let rate = Double(records) / r.seconds
            print(
                "| \(r.name) | \(Int(rate.rounded())) | \(Int((r.seconds / Double(records) * 1e9).rounded())) | "
                    + String(format: "%.1f×", r.seconds / herald) + " |")
        }
    }
}
