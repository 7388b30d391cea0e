import Foundation
import HeraldBlocking
import HeraldCore
import Logging

/// Writes each message as `<directory>/<date>-<message id>.eml` instead of sending it
/// (`HERALD_SMTP_URL=file://DIR`), so a newcomer sees real mail without a server. The file is
/// written under a temporary name and renamed, so a reader never sees half a message; the
/// directory is created when missing. The name comes from the message's date and id, so a
/// resend of the same notification replaces its file.
public final class FileMailer: MailSender, Sendable {
    public let directory: String
    /// Blocking file I/O runs on this thread, never on Swift's cooperative pool.
    private let thread = BlockingThread<Void>(name: "herald-mail-file")
    private let logger: Logger

    public init(directory: String, logger: Logger) {
        self.directory = directory
        var logger = logger
        logger[metadataKey: SMTPLogKey.server] = "file://\(directory)"
        self.logger = logger
    }

    deinit {
        thread.stop()
    }

    public func send(_ message: MailMessage) async throws(MailError) -> MailReceipt {
        let bytes = try MailRendering.render(message)
        let directory = self.directory
        let name = Self.fileName(message)
        let result: Result<String, MailError>
        do {
            let written = try await thread.run(
                { (_: inout Void?) throws(MailError) -> String in
                    let path = directory + "/" + name
                    do {
                        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
                        return path
                    } catch {
                        throw .make(.writeFailed, "cannot write \(path): \(error.localizedDescription)")
                    }
                }, closed: { MailError.make(.mailerClosed, "the mailer is closed") })
            result = .success(written)
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let path):
            logger.info("mail written", metadata: [SMTPLogKey.messageID: "\(message.messageID)", SMTPLogKey.file: "\(path)"])
            return MailReceipt(messageID: message.messageID, reply: path)
        case .failure(let error):
            logger.error("mail not written", metadata: [SMTPLogKey.messageID: "\(message.messageID)", SMTPLogKey.error: "\(error)"])
            throw error
        }
    }

    /// Writes queued before now finish; later ones fail with `mailerClosed`. Returns once the
    /// writing thread has exited (at most 5 seconds later).
    public func close() async {
        thread.stop()
        let deadline = ContinuousClock.now + .seconds(5)
        while !thread.hasExited && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// `20250701T120000.123Z-<id>.eml`: the id's letters, digits, `.`, `-`, `_` and `@`, other
    /// characters replaced by `_`, at most 100 of them.
    static func fileName(_ message: MailMessage) -> String {
        var id = Substring(message.messageID)
        if id.hasPrefix("<") { id = id.dropFirst() }
        if id.hasSuffix(">") { id = id.dropLast() }
        let safe = String(
            id.unicodeScalars.prefix(100).map { scalar -> Character in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || ".-_@".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            })
        let date = RFC3339.format(message.date).filter { $0 != "-" && $0 != ":" }
        return "\(date)-\(safe.isEmpty ? "message" : safe).eml"
    }
}
