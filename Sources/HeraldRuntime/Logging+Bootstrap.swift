import Foundation
import HeraldCore
import HeraldSettings
import Logging

public enum HeraldLogging {
    /// Bootstraps swift-log once, from HERALD_LOG_FORMAT, HERALD_LOG_LEVEL and HERALD_LOG_MASK_EMAILS.
    public static func bootstrap(format: LogSettings.Format, level: String, maskEmails: Bool = false) {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text: handler = StreamLogHandler.standardError(label: label)
            case .json: handler = JSONLineLogHandler(label: label)
            }
            handler.logLevel = logLevel
            return maskEmails ? EmailMaskingLogHandler(inner: handler) : handler
        }
    }
}

/// One JSON object per line on standard error, for log shippers.
struct JSONLineLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var object: [String: String] = [
            "ts": RFC3339.format(EventTime.now()),
            "level": event.level.rawValue,
            "msg": "\(event.message)",
            "logger": label,
        ]
        if event.source != label { object["source"] = event.source }
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        for (k, v) in all where object[k] == nil { object[k] = "\(v)" }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }
}
