import HeraldCore
import Logging

/// Wraps a log handler and masks email addresses in messages and metadata
/// (`HERALD_LOG_MASK_EMAILS=true`): `ada.lovelace@example.com` becomes `a***@example.com`,
/// so a log line still tells which domain a mail went to, not to whom.
struct EmailMaskingLogHandler: LogHandler {
    var inner: any LogHandler

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(Self.mask) }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.mask) }
    }

    func log(event: LogEvent) {
        var masked = event
        masked.message = "\(Self.mask("\(event.message)"))"
        masked.metadata = event.metadata?.mapValues(Self.mask)
        inner.log(event: masked)
    }

    static func mask(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let s): .string(mask(s))
        case .stringConvertible(let c): .string(mask(c.description))
        case .array(let a): .array(a.map(mask))
        case .dictionary(let d): .dictionary(d.mapValues(mask))
        }
    }

    /// Replaces the local part of every address in `text` (see `EmailMasking`).
    static func mask(_ text: String) -> String {
        EmailMasking.mask(text)
    }
}
