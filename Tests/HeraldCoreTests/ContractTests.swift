import Foundation
import HeraldCore
import Testing

/// Topics/asyncapi.yaml is what other services publish against. These tests hold it and
/// Herald's decoder together: the document's own checks pass, every example decodes with
/// Herald's `EnvelopeDecoder` and `EventCatalog`, every generated good or bad payload gets
/// the same verdict from Herald as from the schema, and the event types match.
@Suite("Contract (Topics/asyncapi.yaml)")
struct ContractTests {
    /// One record of `contract.py --emit-examples` or `--emit-cases`.
    struct Record: Decodable {
        let topic: String
        let event_type: String
        let headers: [String: String]
        /// The payload as the producer sends it (JSON text).
        let value: String
        /// `accept` or `reject`; only in cases.
        let expect: String?
        let why: String?

        func message(offset: Int64) -> InboundMessage {
            InboundMessage(
                topic: topic, partition: 0, offset: offset, timestamp: 1_714_564_800_000, key: nil,
                value: Array(value.utf8),
                headers: headers.sorted { $0.key < $1.key }.map { MessageHeader($0.key, $0.value) })
        }
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // HeraldCoreTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    struct Run {
        let status: Int32
        let stdout: Data
        let stderr: String
    }

    /// Runs `python3 Topics/contract.py <arguments>` from the repository root.
    static func contract(_ arguments: [String]) throws -> Run {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("herald-contract-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout")
        let errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "Topics/contract.py"] + arguments
        process.currentDirectoryURL = repositoryRoot
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Run(
            status: process.terminationStatus, stdout: try Data(contentsOf: outURL),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    static func records(_ option: String) throws -> [Record] {
        let run = try contract([option])
        try #require(run.status == 0, "contract.py \(option) failed:\n\(run.stderr)")
        return try JSONDecoder().decode([Record].self, from: run.stdout)
    }

    @Test("contract.py finds no problem in the document")
    func documentChecksPass() throws {
        let run = try Self.contract([])
        #expect(run.status == 0, "contract.py failed:\n\(run.stderr)")
        #expect(run.stderr.contains("OK"))
    }

    @Test("contract.py refuses an unknown option")
    func unknownOptionFails() throws {
        let run = try Self.contract(["--no-such-option"])
        #expect(run.status != 0)
    }

    @Test("--validate-published: a MailStatusChanged record as Herald writes it passes, one with an address or a bad status fails")
    func validatePublished() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("herald-published-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let headers =
            #"{"ce_id":"7d0f3a52-1c9e-4d0b-9a57-2f1e6b8c4d31","ce_type":"MailStatusChanged","ce_time":"2024-05-01T12:00:02.481Z","ce_source":"herald-outbox","aggregate_type":"Notification"}"#
        // Every kind and status Herald has: the document's enums must list them.
        var records: [String] = []
        for kind in NotificationKind.allCases {
            for status in ["sent", "deferred", "failed", "abandoned", "expired", "suppressed"] {
                records.append(
                    #"{"topic":"herald.mail.events","headers":\#(headers),"payload":{"version":1,"notification_id":"3f6c2b1e-8a4d-4e5f-9b7c-0d1e2f3a4b5c","kind":"\#(kind.rawValue)","user_id":"u1","event_id":"e1","status":"\#(status)","attempts":1,"reply_code":451,"reply_class":"4xx","enhanced_status":"4.3.0","occurred_at":"2024-05-01T12:00:02.481Z"}}"#
                )
            }
        }
        try Data(("[" + records.joined(separator: ",") + "]").utf8).write(to: scratch)
        let good = try Self.contract(["--validate-published", scratch.path])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stderr.contains("\(records.count) published records valid"), "\(good.stderr)")
        try Data(
            #"[{"topic":"herald.mail.events","headers":\#(headers),"payload":{"version":1,"notification_id":"x","kind":"welcome","user_id":"u1","event_id":"e1","status":"bounced","attempts":-1,"occurred_at":"2024-05-01T12:00:02.481Z"}}]"#
                .utf8
        ).write(to: scratch)
        let bad = try Self.contract(["--validate-published", scratch.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("bounced") && bad.stderr.contains("attempts"), "\(bad.stderr)")
    }

    @Test("every example decodes into the DomainEvent it documents")
    func everyExampleDecodes() throws {
        let examples = try Self.records("--emit-examples")
        #expect(examples.count == EventCatalog.standard.types.count)
        let decoder = EnvelopeDecoder(clock: fixedClock)
        // The topics the contract documents, Herald's defaults (HeraldSettings' KafkaSettings).
        let topics: [EventCatalog.CatalogTopic: String] = [.user: "user_service_topic", .auth: "auth_service_topic"]
        for (index, example) in examples.enumerated() {
            let envelope: Envelope
            do {
                envelope = try decoder.decode(example.message(offset: Int64(index)))
            } catch {
                Issue.record("\(example.event_type): Herald rejects the example: \(error)")
                continue
            }
            #expect(envelope.metadata.type.rawValue == example.event_type)
            // Examples carry their own time or fall back to the record's, never the clock.
            #expect(envelope.metadata.occurredAt != fixedClockTime, "\(example.event_type)")
            let event: DomainEvent?
            do {
                event = try EventCatalog.standard.decode(envelope)
            } catch {
                Issue.record("\(example.event_type): the catalogue rejects the example: \(error)")
                continue
            }
            let decoded = try #require(event, "\(example.event_type): not in the catalogue")
            #expect(typeName(decoded) == example.event_type)
            let entry = try #require(EventCatalog.standard.entries[envelope.metadata.type])
            #expect(topics[entry.topic] == example.topic, "\(example.event_type) is documented on the wrong topic")
        }
    }

    @Test("the document, the catalogue and the handlers name the same event types")
    func typesAgree() throws {
        let examples = try Self.records("--emit-examples")
        let documented = Set(examples.map(\.event_type))
        #expect(documented.count == examples.count, "one example per event")
        let catalogued = Set(EventCatalog.standard.types.map(\.rawValue))
        let handled = Set(StandardHandlers.handledTypes.map(\.rawValue))
        #expect(documented == catalogued.union(handled))
        #expect(handled.isSubset(of: catalogued), "a handled type has no schema")
        // With the default configuration every contract event has a handler.
        #expect(documented.subtracting(handled).isEmpty)
        // With mail off, the events no other handler takes are acknowledged, not dead-lettered.
        let mailOff = StandardHandlers.acknowledgedWithoutEffect(ignored: [], mailEnabled: false)
        let withoutMail = Set(StandardHandlers.handlers(mail: nil).flatMap(\.handledTypes).map(\.rawValue))
        let acknowledged = withoutMail.union(mailOff.map(\.rawValue))
        #expect(documented.subtracting(acknowledged).isEmpty)
        #expect(mailOff.map(\.rawValue).allSatisfy(documented.contains))
        #expect(
            mailOff
                == ["EmailVerificationRequested", "PasswordResetRequested", "PasswordChanged", "EmailChangeRequested"])
    }

    @Test("Herald and the schemas agree on every generated good and bad payload")
    func generatedCasesAgree() throws {
        let cases = try Self.records("--emit-cases")
        #expect(cases.count > 1000)
        #expect(cases.contains { $0.expect == "reject" && $0.why?.contains("without user_id") == true })
        #expect(cases.contains { $0.expect == "reject" && $0.why?.contains("a@b.com\\r\\nBcc: x") == true })
        let decoder = EnvelopeDecoder(clock: fixedClock)
        var disagreements: [String] = []
        for (index, item) in cases.enumerated() {
            let verdict: String
            var detail = ""
            do {
                let envelope = try decoder.decode(item.message(offset: Int64(index)))
                if let event = try EventCatalog.standard.decode(envelope) {
                    verdict = typeName(event) == item.event_type ? "accept" : "reject"
                    detail = "decoded as \(typeName(event))"
                } else {
                    verdict = "reject"
                    detail = "unknown type \(envelope.metadata.type)"
                }
            } catch {
                verdict = "reject"
                detail = "\(error)"
            }
            if verdict != item.expect {
                disagreements.append("\(item.why ?? "?"): schema says \(item.expect ?? "?"), Herald \(verdict) (\(detail))")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreement(s):\n\(disagreements.prefix(40).joined(separator: "\n"))")
    }
}
