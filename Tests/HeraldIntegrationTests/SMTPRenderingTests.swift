import Foundation
import HeraldCore
import Testing

@testable import HeraldSMTP

@Suite("SMTP rendering and settings")
struct SMTPRenderingTests {
    private func text(_ message: MailMessage) throws -> String {
        String(decoding: try MailRendering.render(message), as: UTF8.self)
    }

    private func headerBlock(_ rendered: String) -> String {
        String(rendered[..<rendered.range(of: "\r\n\r\n")!.lowerBound])
    }

    /// Decodes `=?UTF-8?B?…?=` words separated by folding whitespace.
    private func decodeEncodedWords(_ value: String) -> String {
        let words = value.replacingOccurrences(of: "\r\n", with: "").split(separator: " ")
        var bytes = Data()
        for word in words {
            guard word.hasPrefix("=?UTF-8?B?"), word.hasSuffix("?=") else { return value }
            bytes += Data(base64Encoded: String(word.dropFirst(10).dropLast(2)))!
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func changed(_ change: (inout MailMessage) -> Void) -> MailMessage {
        var message = SMTPTests.message()
        change(&message)
        return message
    }

    @Test func everyLineEndsInCRLFAndStaysShort() throws {
        let long = String(repeating: "ção e mais texto ", count: 20)
        let message = SMTPTests.message(subject: long, fromName: "João da Silva Ninguém de Oliveira Souza", text: long + "\n" + long)
        let bytes = try MailRendering.render(message)
        for (index, byte) in bytes.enumerated() {
            if byte == 10 { #expect(index > 0 && bytes[index - 1] == 13) }
            if byte == 13 { #expect(index + 1 < bytes.count && bytes[index + 1] == 10) }
            #expect(byte < 0x80, "rendered mail must be 7-bit")
        }
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 78 }, "a line longer than 78 characters")
    }

    @Test func headersAreThere() throws {
        let rendered = try text(SMTPTests.message())
        let headers = headerBlock(rendered)
        #expect(headers.contains("Date: Tue, 1 Jul 2025 12:00:00 +0000\r\n"))
        #expect(headers.contains("From: Herald <noreply@herald.example>\r\n"))
        #expect(headers.contains("To: Ana Souza <ana@example.com>\r\n"))
        #expect(headers.contains("Reply-To: Support <support@herald.example>\r\n"))
        #expect(headers.contains("Subject: Welcome to Herald\r\n"))
        #expect(headers.contains("Message-ID: <1.test@herald.local>\r\n"))
        #expect(headers.contains("MIME-Version: 1.0\r\n"))
        #expect(headers.contains("X-Herald-Kind: welcome\r\n"))
        #expect(headers.contains("Content-Type: multipart/alternative; boundary=\"=_herald_"))
    }

    @Test func multipartAlternativeWithTextThenHTML() throws {
        let message = SMTPTests.message()
        let rendered = try text(message)
        let boundary = MailRendering.boundary(for: message)
        #expect(boundary.hasPrefix("=_herald_") && boundary.count == 25)
        #expect(rendered.components(separatedBy: "--\(boundary)\r\n").count == 3)
        #expect(rendered.hasSuffix("\r\n--\(boundary)--\r\n"))
        let plain = try #require(
            rendered.range(of: "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable"))
        let html = try #require(rendered.range(of: "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable"))
        #expect(plain.lowerBound < html.lowerBound)
        #expect(rendered.contains("\r\n\r\nHello Ana,\r\nwelcome aboard.\r\n\r\n--\(boundary)\r\n"))
        // The same message renders to the same bytes; another id to another boundary.
        #expect(try MailRendering.render(message) == MailRendering.render(message))
        #expect(MailRendering.boundary(for: SMTPTests.message(id: "2")) != boundary)
    }

    @Test func nonASCIISubjectIsEncodedWords() throws {
        let subject = "Olá — confirmação ✓"
        let headers = headerBlock(try text(SMTPTests.message(subject: subject)))
        let line = try #require(headers.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject: ") })
        #expect(line.hasPrefix("Subject: =?UTF-8?B?"))
        #expect(decodeEncodedWords(String(line.dropFirst("Subject: ".count))) == subject)
    }

    @Test func longNonASCIISubjectIsFoldedBetweenWholeCharacters() throws {
        let subject = String(repeating: "Confirmação de endereço ✓ ", count: 8) + "👩🏽‍💻"
        let headers = headerBlock(try text(SMTPTests.message(subject: subject)))
        let start = try #require(headers.range(of: "Subject: "))
        var value = ""
        for line in headers[start.upperBound...].components(separatedBy: "\r\n") {
            if !value.isEmpty && !line.hasPrefix(" ") { break }
            value += line
            #expect(line.utf8.count <= 78)
        }
        let words = value.split(separator: " ")
        #expect(words.count > 3)
        #expect(words.allSatisfy { $0.count <= 75 && $0.hasPrefix("=?UTF-8?B?") && $0.hasSuffix("?=") })
        // Each word decodes to valid UTF-8 on its own: no character was split.
        for word in words {
            let bytes = Data(base64Encoded: String(word.dropFirst(10).dropLast(2)))!
            #expect(String(validating: bytes, as: UTF8.self) != nil)
        }
        #expect(decodeEncodedWords(value) == subject)
    }

    @Test func longASCIISubjectIsFoldedAtSpaces() throws {
        let subject = (1...30).map { "word\($0)" }.joined(separator: " ")
        let headers = headerBlock(try text(SMTPTests.message(subject: subject)))
        let start = try #require(headers.range(of: "Subject: "))
        let folded = headers[start.upperBound...].components(separatedBy: "\r\n").prefix { !$0.contains(":") || $0.hasPrefix(" ") }
        #expect(folded.count > 1)
        #expect(folded.joined(separator: "") == subject)  // unfolding removes only the CRLFs
    }

    @Test func displayNames() throws {
        #expect(HeaderText.phrase("Herald Team") == ["Herald", "Team"])
        #expect(HeaderText.phrase("Doe, John") == ["\"Doe, John\""])
        #expect(HeaderText.phrase("say \"hi\"") == ["\"say \\\"hi\\\"\""])
        #expect(HeaderText.phrase("=?x?=") == ["\"=?x?=\""])
        let encoded = HeaderText.phrase("João")
        #expect(encoded == ["=?UTF-8?B?" + Data("João".utf8).base64EncodedString() + "?="])
    }

    @Test(arguments: ["x\r\nBcc: evil@x", "x\nBcc: evil@x", "x\rBcc: evil@x", "nul\u{0}", "nel\u{85}"])
    func lineBreaksInHeaderValuesAreRejected(_ value: String) throws {
        let variants = [
            SMTPTests.message(subject: value),
            SMTPTests.message(fromName: value),
            SMTPTests.message(toName: value),
            changed { $0.replyTo = MailAddress(SMTPTests.address("a@example.com"), displayName: value) },
            changed { $0.headers = [MailHeader("X-Herald-Kind", value)] },
            changed { $0.messageID = "<\(value)@herald.local>" },
        ]
        for message in variants {
            let error = try #require(throws: MailError.self) { try MailRendering.render(message) }
            #expect(error.code == .invalidMessage)
            #expect(!error.isTransient)
        }
    }

    @Test func invalidExtraHeaderNamesAreRejected() {
        for name in ["Bcc", "content-type", "X Bad", "X:Bad", "", "X-\u{e9}"] {
            var message = SMTPTests.message()
            message.headers = [MailHeader(name, "v")]
            #expect(throws: MailError.self) { try MailRendering.render(message) }
        }
    }

    @Test func quotedPrintable() {
        func qp(_ text: String) -> String {
            var out: [UInt8] = []
            QuotedPrintable.encode(text, into: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(qp("a=b") == "a=3Db")
        #expect(qp("trailing \nspace\t") == "trailing=20\r\nspace=09")
        #expect(qp(".starts\n..") == "=2Estarts\r\n=2E.")
        #expect(qp("olá") == "ol=C3=A1")
        #expect(qp("a\r\nb\rc\n") == "a\r\nb\r\nc\r\n")
        #expect(qp("") == "")
        let long = String(repeating: "x", count: 200)
        let lines = qp(long).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(lines.map { $0.hasSuffix("=") ? String($0.dropLast()) : $0 }.joined() == long)
        // An encoded byte is never split by a soft break.
        let encoded = qp(String(repeating: "é", count: 40)).components(separatedBy: "\r\n")
        #expect(encoded.allSatisfy { $0.count <= 76 && ($0.isEmpty || $0.hasSuffix("=") || $0.hasSuffix("9")) })
    }

    @Test func dates() {
        #expect(HeaderText.rfc5322Date(EventTime(millisecondsSinceEpoch: 0)) == "Thu, 1 Jan 1970 00:00:00 +0000")
        #expect(HeaderText.rfc5322Date(EventTime(millisecondsSinceEpoch: 1_709_210_096_999)) == "Thu, 29 Feb 2024 12:34:56 +0000")
        #expect(HeaderText.rfc5322Date(EventTime(millisecondsSinceEpoch: -1000)) == "Wed, 31 Dec 1969 23:59:59 +0000")
    }

    // MARK: - MailAddress

    @Test func parsesMailFrom() throws {
        let named = try MailAddress(parsing: "Herald <noreply@herald.example>")
        #expect(named.address.rawValue == "noreply@herald.example" && named.displayName == "Herald")
        let bare = try MailAddress(parsing: " noreply@herald.example ")
        #expect(bare.address.rawValue == "noreply@herald.example" && bare.displayName == nil)
        let quoted = try MailAddress(parsing: "\"Doe, \\\"J\\\"\" <j@example.com>")
        #expect(quoted.displayName == "Doe, \"J\"")
        let brackets = try MailAddress(parsing: "<j@example.com>")
        #expect(brackets.displayName == nil)
        for bad in ["Herald <bad>", "Herald noreply@herald.example>", "x\r\n <y@example.com>", "", "Herald <>"] {
            #expect(throws: ValidationError.self) { try MailAddress(parsing: bad) }
        }
    }

    // MARK: - SMTPSettings

    @Test func smtpURLRequiresStartTLS() throws {
        let settings = try SMTPSettings(url: "smtp://mail.example.com")
        #expect(settings.transport == .smtp(url: "smtp://mail.example.com:587", security: .startTLSRequired))
        #expect(settings.verifyCertificate && settings.heloName == nil && settings.username == nil)
        let plain = try SMTPSettings(url: "smtp://localhost:1025", allowPlaintext: true)
        #expect(plain.transport == .smtp(url: "smtp://localhost:1025", security: .plaintext))
        let implicit = try SMTPSettings(url: "SMTPS://mail.example.com", allowPlaintext: true)
        #expect(implicit.transport == .smtp(url: "smtps://mail.example.com:465", security: .implicitTLS))
        let ipv6 = try SMTPSettings(url: "smtp://[::1]:2525")
        #expect(ipv6.transport == .smtp(url: "smtp://[::1]:2525", security: .startTLSRequired))
    }

    @Test func credentialsAndHeloFromTheURL() throws {
        let settings = try SMTPSettings(url: "smtp://us%40er:p%3As%20s@mail.example.com:2525/herald.example.com")
        #expect(settings.username == "us@er")
        #expect(settings.password == "p:s s")
        #expect(settings.heloName == "herald.example.com")
        #expect(!settings.description.contains("p:s s") && !settings.description.contains("p%3A"))
        #expect(settings.description.contains("mail.example.com:2525"))
        let explicit = try SMTPSettings(url: "smtp://a:b@h", username: "u", password: "p", heloName: "me")
        #expect(explicit.username == "u" && explicit.password == "p" && explicit.heloName == "me")
    }

    @Test func fileURLs() throws {
        #expect(try SMTPSettings(url: "file://var/mail").transport == .file(directory: "var/mail"))
        #expect(try SMTPSettings(url: "file:///srv/mail").transport == .file(directory: "/srv/mail"))
    }

    @Test(arguments: [
        "http://mail.example.com", "mail.example.com", "smtp://", "smtp://h:0", "smtp://h:99999", "smtp://h:x",
        "smtp://u:%zz@h", "smtp://h/bad name", "file://", "smtp://h\r\n",
    ])
    func invalidURLs(_ url: String) {
        #expect(throws: ValidationError.self) { try SMTPSettings(url: url) }
    }

    @Test("every MailError code maps to the courier's terms: refused, deferred or unavailable, with the server's reply")
    func deliveryFailures() {
        let refused: [MailError.Code] = [.invalidMessage, .rejected]
        let deferred: [MailError.Code] = [.deferred, .timeout, .failed]
        let unavailable: [MailError.Code] = [
            .connectionFailed, .tlsFailed, .certificateRejected, .authenticationFailed, .mailerClosed, .writeFailed,
            .tokenUnavailable, .tokenRefused,
        ]
        for code in refused { #expect(MailError.make(code, "x").deliveryFailure == .refused(reason: "SMTP \(code): x")) }
        for code in deferred { #expect(MailError.make(code, "x").deliveryFailure == .deferred(reason: "SMTP \(code): x")) }
        for code in unavailable { #expect(MailError.make(code, "x").deliveryFailure == .unavailable(reason: "SMTP \(code): x")) }
        let answered = MailError.make(.rejected, "RCPT failed", smtpCode: 550, serverReply: "550 5.7.1 rejected by policy")
        #expect(answered.deliveryFailure == .refused(reason: "RCPT failed: 550 5.7.1 rejected by policy"))
    }
}
