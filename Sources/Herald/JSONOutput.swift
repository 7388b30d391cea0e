import Foundation

/// The one JSON style of every command's output (`herald lag --json`, `mail list --json`,
/// `mail show`, `outbox list --json`, `outbox relay --once`): one object per line, snake_case
/// keys in sorted order, nested objects as objects, every field present (null when empty),
/// times as RFC 3339 strings in UTC.
enum JSONOutput {
    /// `object` on one line. Values: strings, numbers, booleans, `null`, arrays and
    /// dictionaries of those.
    static func line(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// `value`, or JSON `null` when nil.
    static func nullable(_ value: Any?) -> Any {
        value ?? NSNull()
    }

    /// The JSON text `text` parsed (an object stays an object); null when nil or not JSON.
    static func parsed(_ text: String?) -> Any {
        guard let text, let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            return NSNull()
        }
        return value
    }
}
