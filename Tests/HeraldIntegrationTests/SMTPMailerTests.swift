import Foundation
import HeraldCore
import HeraldSMTP
import Testing

/// SMTPMailer (libcurl) against a real SMTP server (smtp_server.py, python3-aiosmtpd).
@Suite("SMTP mailer against a real server", .timeLimit(.minutes(10)))
struct SMTPMailerTests {
    private func mailer(_ settings: SMTPSettings, workers: Int = 1) -> SMTPMailer {
        SMTPMailer(settings: settings, workers: workers, logger: SMTPTests.quietLogger)
    }

    @Test func plaintextWhenExplicitlyAllowed() async throws {
        let server = try await SMTPServer.start()
        let mailer = mailer(try SMTPTests.settings(server, allowPlaintext: true))
        defer { mailer.stop() }
        let message = SMTPTests.message()
        let receipt = try await mailer.send(message)
        #expect(receipt.messageID == message.messageID)
        // The reply's text, without the CRLF that ends it on the wire.
        #expect(receipt.reply == "250 2.0.0 OK queued as herald-test-1", "\(receipt.reply ?? "nil")")

        let received = try server.received()
        try #require(received.count == 1, "\(server.log())")
        #expect(received[0].from == "noreply@herald.example")
        #expect(received[0].to == ["ana@example.com"])
        #expect(!received[0].tls)
        // The server got exactly the rendered bytes (libcurl undid nothing, added nothing).
        #expect(received[0].data == (try MailRendering.render(message)))

        let parsed = try await ParsedMail.parse(received[0].data)
        #expect(parsed.defects.isEmpty, "\(parsed.defects)")
        #expect(parsed.header("From") == "Herald <noreply@herald.example>")
        #expect(parsed.header("To") == "Ana Souza <ana@example.com>")
        #expect(parsed.header("Reply-To") == "Support <support@herald.example>")
        #expect(parsed.header("Subject") == "Welcome to Herald")
        #expect(parsed.header("Message-ID") == "<1.test@herald.local>")
        #expect(parsed.header("Date") == "Tue, 01 Jul 2025 12:00:00 +0000")
        #expect(parsed.header("MIME-Version") == "1.0")
        #expect(parsed.header("X-Herald-Kind") == "welcome")
        #expect(parsed.contentType == "multipart/alternative")
        try #require(parsed.parts.count == 2)
        #expect(parsed.parts[0].contentType == "text/plain" && parsed.parts[0].charset == "utf-8")
        #expect(parsed.parts[0].text == "Hello Ana,\nwelcome aboard.\n")
        #expect(parsed.parts[1].contentType == "text/html")
        #expect(parsed.parts[1].text == "<p>Hello Ana,</p>\n<p>welcome aboard.</p>\n")
    }

    @Test func nonASCIIRoundTrip() async throws {
        let server = try await SMTPServer.start()
        let mailer = mailer(try SMTPTests.settings(server, allowPlaintext: true))
        defer { mailer.stop() }
        let subject = "Olá — confirmação ✓"
        let link = "https://auth.example.com/auth/verify-email/confirm?token=" + String(repeating: "AbC-_9", count: 12)
        let text = "Olá João,\nconfirme o seu endereço: \(link)\n. a line that starts with a dot\nfim "
        let html = "<p>Olá João,</p>\n<p><a href=\"\(link)\">confirmar</a></p>\n"
        var message = SMTPTests.message(subject: subject, fromName: "Équipe Herald", toName: "João Ninguém", text: text, html: html)
        let longSubject = String(repeating: "Confirmação necessária ✓ ", count: 6)
        message.headers.append(MailHeader("X-Herald-Note", longSubject))
        _ = try await mailer.send(message)

        let received = try server.received()
        try #require(received.count == 1)
        let parsed = try await ParsedMail.parse(received[0].data)
        #expect(parsed.defects.isEmpty, "\(parsed.defects)")
        #expect(parsed.header("Subject") == subject)
        #expect(parsed.header("X-Herald-Note") == longSubject)
        #expect(parsed.header("From") == "Équipe Herald <noreply@herald.example>")
        #expect(parsed.header("To") == "João Ninguém <ana@example.com>")
        try #require(parsed.parts.count == 2)
        // Quoted-printable keeps the trailing space and the leading dot.
        #expect(parsed.parts[0].text == text)
        #expect(parsed.parts[1].text == html)
        #expect(parsed.parts[1].text.contains(link))
    }

    @Test func startTLSWithATrustedCertificate() async throws {
        let directory = try TestPorts.temporaryDirectory("smtp-cert")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificate = try await TestCertificate.make(in: directory)
        let server = try await SMTPServer.start(.init(certificate: certificate, requireStartTLS: true))
        let mailer = mailer(try SMTPTests.settings(server, caFile: certificate.certificatePath))
        defer { mailer.stop() }
        _ = try await mailer.send(SMTPTests.message())
        let received = try server.received()
        try #require(received.count == 1, "\(server.log())")
        #expect(received[0].tls)
    }

    @Test func authOverStartTLS() async throws {
        let directory = try TestPorts.temporaryDirectory("smtp-cert")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificate = try await TestCertificate.make(in: directory)
        let server = try await SMTPServer.start(
            .init(certificate: certificate, requireStartTLS: true, auth: (user: "herald", password: "s3cr:t@x")))

        // Percent-encoded credentials in the URL.
        let good = mailer(try SMTPTests.settings(server, credentials: "herald:s3cr%3At%40x@", caFile: certificate.certificatePath))
        defer { good.stop() }
        _ = try await good.send(SMTPTests.message())
        let received = try server.received()
        try #require(received.count == 1, "\(server.log())")
        #expect(received[0].authenticated && received[0].tls)

        let bad = mailer(try SMTPTests.settings(server, credentials: "herald:wrong@", caFile: certificate.certificatePath))
        defer { bad.stop() }
        let error = try #require(await SMTPTests.mailError { _ = try await bad.send(SMTPTests.message(id: "2")) })
        #expect(error.code == .authenticationFailed)
        #expect(error.isTransient)
        #expect(error.smtpCode == 535)
        #expect(!error.description.contains("wrong") && !error.debugDescription.contains("wrong"))

        // No credentials at all: the server requires AUTH.
        let anonymous = mailer(try SMTPTests.settings(server, caFile: certificate.certificatePath))
        defer { anonymous.stop() }
        let refused = try #require(await SMTPTests.mailError { _ = try await anonymous.send(SMTPTests.message(id: "3")) })
        #expect(refused.isTransient && refused.code == .authenticationFailed, "\(refused.debugDescription)")
        #expect(try server.received().count == 1)
    }

    @Test func untrustedCertificateIsRejected() async throws {
        let directory = try TestPorts.temporaryDirectory("smtp-cert")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificate = try await TestCertificate.make(in: directory)
        let server = try await SMTPServer.start(.init(certificate: certificate, requireStartTLS: true))
        let mailer = mailer(try SMTPTests.settings(server))  // system CAs only
        defer { mailer.stop() }
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message()) })
        #expect(error.code == .certificateRejected, "\(error.debugDescription)")
        #expect(error.isTransient)
        #expect(try server.received().isEmpty)
    }

    @Test func startTLSIsRequiredUnlessPlaintextIsAllowed() async throws {
        let server = try await SMTPServer.start()  // offers no STARTTLS
        let mailer = mailer(try SMTPTests.settings(server))
        defer { mailer.stop() }
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message()) })
        #expect(error.code == .tlsFailed, "\(error.debugDescription)")
        #expect(error.isTransient)
        #expect(try server.received().isEmpty)
    }

    @Test func deferredThenAccepted() async throws {
        let server = try await SMTPServer.start(.init(script: ["451", "250"]))
        let mailer = mailer(try SMTPTests.settings(server, allowPlaintext: true))
        defer { mailer.stop() }
        let message = SMTPTests.message()
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(message) })
        #expect(error.code == .deferred)
        #expect(error.isTransient)
        #expect(error.smtpCode == 451)
        #expect(error.serverReply?.contains("try again later") == true)
        _ = try await mailer.send(message)
        let received = try server.received()
        #expect(received.count == 1)
    }

    @Test(arguments: ["550", "rcpt:550"])
    func rejectedIsPermanent(_ script: String) async throws {
        let server = try await SMTPServer.start(.init(script: [script]))
        let mailer = mailer(try SMTPTests.settings(server, allowPlaintext: true))
        defer { mailer.stop() }
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message()) })
        #expect(error.code == .rejected)
        #expect(!error.isTransient)
        #expect(error.smtpCode == 550)
        #expect(error.serverReply?.contains("rejected by policy") == true, "\(error.debugDescription)")
        #expect(try server.received().isEmpty)
    }

    @Test func serverDownForAWhile() async throws {
        let server = try await SMTPServer.start()
        let mailer = mailer(try SMTPTests.settings(server, allowPlaintext: true))
        defer { mailer.stop() }
        _ = try await mailer.send(SMTPTests.message(id: "1"))
        try await server.stop()

        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message(id: "2")) })
        #expect(error.code == .connectionFailed, "\(error.debugDescription)")
        #expect(error.isTransient)
        #expect(error.smtpCode == nil)

        try await server.start()
        _ = try await mailer.send(SMTPTests.message(id: "2"))
        let received = try server.received()
        #expect(received.count == 2)
    }

    @Test func nothingListening() async throws {
        let settings = try SMTPSettings(
            url: "smtp://127.0.0.1:\(try TestPorts.free())", allowPlaintext: true, connectTimeout: .seconds(2))
        let mailer = mailer(settings)
        defer { mailer.stop() }
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message()) })
        #expect(error.code == .connectionFailed && error.isTransient)
    }

    @Test func oneConnectionPerWorker() async throws {
        let server = try await SMTPServer.start()
        let single = mailer(try SMTPTests.settings(server, allowPlaintext: true), workers: 1)
        for index in 1...20 {
            _ = try await single.send(SMTPTests.message(id: "\(index)"))
        }
        var received = try server.received()
        #expect(received.count == 20)
        #expect(Set(received.map(\.connection)) == [1], "\(received.map(\.connection))")
        await single.close()

        // Two workers sending concurrently: at most two more connections.
        let pair = mailer(try SMTPTests.settings(server, allowPlaintext: true), workers: 2)
        defer { pair.stop() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 21...60 {
                group.addTask { _ = try await pair.send(SMTPTests.message(id: "\(index)")) }
            }
            try await group.waitForAll()
        }
        received = try server.received()
        #expect(received.count == 60)
        #expect(Set(received.dropFirst(20).map(\.connection)).count <= 2)
        #expect(Set(received.dropFirst(20).map(\.connection)).isSubset(of: [2, 3]))
    }

    @Test(arguments: ["x\r\nBcc: evil@x", "x\nBcc: evil@x"])
    func headerInjectionIsRejectedBeforeSending(_ value: String) async throws {
        let server = try await SMTPServer.start()
        let mailer = mailer(try SMTPTests.settings(server, allowPlaintext: true))
        defer { mailer.stop() }
        for message in [SMTPTests.message(subject: value), SMTPTests.message(toName: value), SMTPTests.message(fromName: value)] {
            let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(message) })
            #expect(error.code == .invalidMessage)
            #expect(!error.isTransient)
        }
        #expect(try server.received().isEmpty)
    }

    @Test func closedMailerFailsTransiently() async throws {
        let settings = try SMTPSettings(url: "smtp://127.0.0.1:1", allowPlaintext: true)
        let mailer = mailer(settings)
        await mailer.close()
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message()) })
        #expect(error.code == .mailerClosed && error.isTransient)
        // Through the port: the transport is unavailable (the courier waits, no attempt used).
        await #expect(throws: MailDeliveryFailure.unavailable(reason: "SMTP mailer closed: the mailer is closed")) {
            _ = try await mailer.deliver(SMTPTests.message())
        }
    }

    @Test func fileTransportWritesEML() async throws {
        let directory = try TestPorts.temporaryDirectory("mail-files") + "/nested/out"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let transport = makeMailer(try SMTPSettings(url: "file://\(directory)"), workers: 2, logger: SMTPTests.quietLogger)
        #expect(transport is FileMailer)
        let message = SMTPTests.message(id: "a/b+c")
        let receipt = try await transport.deliver(message)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files == ["20250701T120000.000Z-a_b_c.test@herald.local.eml"])
        #expect(receipt.reply == directory + "/" + files[0])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + files[0]))
        #expect(Array(bytes) == (try MailRendering.render(message)))
        let parsed = try await ParsedMail.parse(Array(bytes))
        #expect(parsed.parts.count == 2 && parsed.header("Subject") == "Welcome to Herald")
        // A resend of the same notification replaces the file.
        _ = try await transport.deliver(message)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).count == 1)
        // Closed through the port: later sends find the transport unavailable.
        await transport.close()
        await #expect(throws: MailDeliveryFailure.unavailable(reason: "SMTP mailer closed: the mailer is closed")) {
            _ = try await transport.deliver(message)
        }
        let smtp = makeMailer(try SMTPSettings(url: "smtp://127.0.0.1:1"), workers: 1, logger: SMTPTests.quietLogger)
        #expect(smtp is SMTPMailer)
        (smtp as? SMTPMailer)?.stop()
    }
}
