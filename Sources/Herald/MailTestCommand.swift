import ArgumentParser
import Foundation
import HeraldCore
import HeraldCourier
import HeraldMail
import HeraldRuntime
import HeraldSMTP
import HeraldSettings
import Logging

extension MailCommand {
    /// `herald mail test`: one mail with sample data, sent now through the transport `herald
    /// run` would use, and what came of it.
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one mail with sample data now through the configured transport, and print what the server answered.",
            discussion: """
                Reads the settings `herald run` sends mail with (HERALD_SMTP_*, HERALD_MAIL_FROM, HERALD_LINK_BASE_URL, \
                HERALD_TEMPLATES_DIR, …) and touches nothing else: no database, Kafka or Redis. Nothing is queued; a link \
                in the mail is a sample that grants nothing (no token is minted or stored). Prints the server's final \
                reply (code and text), the Message-ID, the queue id when the reply names one, the server (never the \
                password), the authentication method (password, xoauth2 with the token's source, or none; never a \
                token), whether TLS was used and, as far as libcurl reports them, the TLS version, cipher and the \
                server's certificate.

                Exit codes: 0 accepted; 65 refused (SMTP 5xx: permanent); 75 deferred (SMTP 4xx or a timeout after \
                the server answered: temporary); 69 unavailable (no connection or no reply, TLS or credentials \
                refused, no XOAUTH2 token, the mail directory not writable); 78 a bad or missing setting, named; 64 a \
                bad option.
                """)

        @Option(help: "The recipient's address.")
        var to: String

        @Option(help: "The kind of mail.")
        var kind: NotificationKind = .welcome

        @Option(help: "The locale (falls back as at send time: pt-BR → pt → the default).")
        var locale: String?

        @Flag(help: "One JSON object instead of text.")
        var json = false

        func validate() throws {
            _ = try recipient()
            _ = try languageTag()
        }

        /// `--to`, validated as Herald validates every recipient's address.
        private func recipient() throws -> EmailAddress {
            do {
                return try EmailAddress(to, field: "--to")
            } catch {
                throw ArgumentParser.ValidationError("\(error)")
            }
        }

        private func languageTag() throws -> LanguageTag? {
            guard let locale else { return nil }
            do {
                return try LanguageTag(locale)
            } catch {
                throw ArgumentParser.ValidationError("--locale: \(error.reason)")
            }
        }

        func run() async throws {
            let settings = try Environment.settings()
            HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level == "info" ? "warning" : settings.log.level)
            // What `herald run` checks before it sends: the transport, the sender, the links and
            // the templates (exit 78 naming the setting).
            let wiring = try MailWiring(settings.mail)
            if !settings.mail.enabled {
                FileHandle.standardError.write(
                    Data("herald: HERALD_MAIL_ENABLED=false: `herald run` sends no mail; testing the mail settings all the same\n".utf8))
            }
            let recipient = try recipient()
            let composer = wiring.composer
            let sample: (message: MailMessage, locale: LanguageTag, link: String?)
            do {
                sample = try composer.composeSample(
                    kind, to: recipient, locale: try languageTag(),
                    messageID: composer.messageID(local: "herald-mail-test-" + UUID().uuidString.lowercased()), date: .now())
            } catch {
                throw HeraldCLIError("\(error)")
            }
            let result = await MailTestSend.send(sample.message, settings: wiring.smtp, logger: Logger(label: "herald.mail.test"))
            let report = MailTestReport(
                result: result, kind: kind.rawValue, locale: sample.locale.rawValue, to: recipient.rawValue,
                from: sample.message.from.description, subject: sample.message.subject, messageID: sample.message.messageID,
                sampleLink: sample.link)
            print(try json ? JSONOutput.line(report.jsonObject) : report.text)
            if report.exitCode != 0 { throw ExitCode(report.exitCode) }
        }
    }
}
