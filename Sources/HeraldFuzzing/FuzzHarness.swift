/// The fuzz targets: each feeds one kind of outside input to the parsers that read it, and
/// checks the invariants those parsers promise beyond "does not crash".
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Kafka records → `EventDispatcher.decide` with the standard handlers (JSON parser,
    /// envelope decoder, event catalogue, value objects).
    case envelope
    /// RFC 3339 and epoch-seconds times, and `RFC3339.format` of any instant.
    case time
    /// `HERALD_*` variables → `HeraldSettings.load`, then what `herald run` builds from them.
    case configuration
    /// Usernames, addresses, locales, sender settings and template variables → the message
    /// the courier composes and renders.
    case mail
    /// Outbox row columns and topic settings → the Kafka record the relay would publish.
    case outbox
    /// An OAuth2 token endpoint's HTTP status and body → the XOAUTH2 token, or why none.
    case oauth2
}

/// An invariant an input broke: a finding, as much as a crash is.
public struct FuzzFailure: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "invariant broken: \(message)" }
}

/// One target, ready to run inputs. Create it once per process: the mail target loads and
/// validates the templates.
public struct FuzzHarness: Sendable {
    public let target: FuzzTarget
    private let mail: MailFuzzer?

    /// - Parameter templatesDirectory: the mail templates (`Templates` of the repository).
    public init(_ target: FuzzTarget, templatesDirectory: String = "Templates") throws {
        self.target = target
        self.mail = target == .mail ? try MailFuzzer(templatesDirectory: templatesDirectory) : nil
    }

    /// Runs one input and says how far it went (`accepted`, `rendered`, `refused: …`, for
    /// replays and corpus checks). Throws when an invariant is broken; a crash is a crash.
    @discardableResult
    public func run(_ bytes: [UInt8]) throws(FuzzFailure) -> String {
        switch target {
        case .envelope: try EnvelopeFuzzer.shared.run(bytes)
        case .time: try TimeFuzzer.run(bytes)
        case .configuration: try ConfigurationFuzzer.run(bytes)
        case .mail: try mail!.run(bytes)
        case .outbox: try OutboxFuzzer.run(bytes)
        case .oauth2: try OAuth2Fuzzer.run(bytes)
        }
    }
}

/// Throws a `FuzzFailure` with `message` unless `condition` holds.
@inline(__always)
func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFailure) {
    if !condition { throw FuzzFailure(message()) }
}

/// Fuzz input cut into fields at 0xFF, a byte that never occurs in UTF-8 text, so a field
/// holding text loses nothing a real value could contain. A missing field is nil.
struct FuzzFields {
    let fields: [ArraySlice<UInt8>]

    init(_ bytes: [UInt8]) {
        fields = bytes.split(separator: 0xFF, omittingEmptySubsequences: false)
    }

    func bytes(_ index: Int) -> [UInt8]? {
        index < fields.count ? Array(fields[index]) : nil
    }

    /// The field as text; invalid UTF-8 becomes U+FFFD, as it does where Herald reads text.
    func string(_ index: Int) -> String? {
        bytes(index).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The field's first byte, or `fallback`.
    func byte(_ index: Int, _ fallback: UInt8 = 0) -> UInt8 {
        bytes(index)?.first ?? fallback
    }
}

/// A JSON string literal for `text` (the harnesses build documents around fuzzed text).
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
