import HeraldCore
import Logging

/// The transport `settings` describe: an `SMTPMailer` with `workers` sender threads, or a
/// `FileMailer`.
public func makeMailer(_ settings: SMTPSettings, workers: Int, logger: Logger) -> any MailTransport {
    switch settings.transport {
    case .smtp:
        SMTPMailer(settings: settings, workers: workers, logger: logger)
    case .file(let directory):
        FileMailer(directory: directory, logger: logger)
    }
}
