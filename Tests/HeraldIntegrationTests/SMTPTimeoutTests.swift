import Foundation
import HeraldCore
import HeraldSMTP
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Where a timeout leaves a mail: a server that accepts the TCP connection and never says a
/// word is unreachable (the mail waits without using an attempt), a server that answered and
/// then went quiet defers this mail (the attempt counts). Short timeouts, and a time limit on
/// the suite: a test that hung here would otherwise hold up the whole run.
@Suite("SMTP timeouts: before the first reply or after it", .timeLimit(.minutes(2)))
struct SMTPTimeoutTests {
    /// A TCP socket listening on 127.0.0.1 that never accepts: the kernel completes the
    /// handshake for queued connections, and nothing ever answers on them. Closed on `close()`.
    final class SilentListener: Sendable {
        let descriptor: Int32
        let port: Int

        init() throws {
            descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { throw TestHarnessFailure(description: "socket failed") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let descriptor = self.descriptor
            let listening = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                    bind(descriptor, generic, length) == 0 && listen(descriptor, 16) == 0
                        && getsockname(descriptor, generic, &length) == 0
                }
            }
            guard listening else {
                Glibc.close(descriptor)
                throw TestHarnessFailure(description: "cannot listen on 127.0.0.1")
            }
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        func close() {
            Glibc.close(descriptor)
        }
    }

    @Test("a server that accepts TCP and never greets: a connection failure, the mail waits without using an attempt")
    func silentServer() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let settings = try SMTPSettings(
            url: "smtp://127.0.0.1:\(listener.port)", allowPlaintext: true, connectTimeout: .seconds(1), transferTimeout: .seconds(2))
        let mailer = SMTPMailer(settings: settings, workers: 1, logger: SMTPTests.quietLogger)
        defer { mailer.stop() }
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message()) })
        #expect(error.code == .connectionFailed, "\(error.debugDescription)")
        #expect(error.smtpCode == nil && error.isTransient)
        guard case .unavailable = error.deliveryFailure else {
            Issue.record("\(error.deliveryFailure)")
            return
        }
        #expect(MailTestOutcome(error.deliveryFailure) == .unavailable)
    }

    @Test("a server that answered and then holds the final reply: a timeout, this mail deferred (its attempt counts)")
    func quietAfterAnswering() async throws {
        let server = try await SMTPServer.start(.init(hold: true))
        defer { server.shutdown() }
        let settings = try SMTPSettings(
            url: "smtp://127.0.0.1:\(server.port)", allowPlaintext: true, connectTimeout: .seconds(5), transferTimeout: .seconds(3))
        let mailer = SMTPMailer(settings: settings, workers: 1, logger: SMTPTests.quietLogger)
        defer { mailer.stop() }
        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message()) })
        try server.releaseAll()
        #expect(error.code == .timeout, "\(error.debugDescription)")
        #expect(error.smtpCode != nil && error.isTransient)
        guard case .deferred = error.deliveryFailure else {
            Issue.record("\(error.deliveryFailure)")
            return
        }
        #expect(try server.held() == 1)
    }
}
