import HeraldCore

/// Reads `HERALD_*` variables, with the `*_FILE` form for every one (the file's content,
/// trailing newline removed, wins only when the plain variable is unset), into typed values;
/// a bad value throws a `ConfigurationError` naming the variable. It remembers every name it
/// was asked for: the test that holds the README's table and the code together reads them.
final class SettingsReader {
    let environment: [String: String]
    let readFile: (String) throws -> String
    private(set) var names: Set<String> = []

    init(environment: [String: String], readFile: @escaping (String) throws -> String) {
        self.environment = environment
        self.readFile = readFile
    }

    func string(_ name: String) throws(ConfigurationError) -> String? {
        names.insert(name)
        if let value = environment[name] { return value }
        if let path = environment[name + "_FILE"] {
            do {
                var text = try readFile(path)
                // `last.isNewline`, not `hasSuffix("\n")`: "\r\n" is a single Character.
                while let last = text.last, last.isNewline { text.removeLast() }
                return text
            } catch {
                throw ConfigurationError(setting: name + "_FILE", problem: "cannot read \(path)")
            }
        }
        return nil
    }

    /// A value that must never be printed (a password, a URL that may hold one).
    func secret(_ name: String, allowEmpty: Bool = true) throws(ConfigurationError) -> Secret? {
        guard let value = try string(name) else { return nil }
        guard allowEmpty || !value.isEmpty else { throw ConfigurationError(setting: name, problem: "is empty") }
        return Secret(value)
    }

    func identifier(_ name: String) throws(ConfigurationError) -> String? {
        guard let value = try string(name) else { return nil }
        guard !value.isEmpty, value.utf8.count <= 249, !value.contains(where: { $0.isWhitespace }) else {
            throw ConfigurationError(setting: name, problem: "must be a non-empty name without spaces")
        }
        return value
    }

    func topic(_ name: String) throws(ConfigurationError) -> String? {
        guard let value = try string(name) else { return nil }
        guard isTopicName(value) else {
            throw ConfigurationError(setting: name, problem: "is not a valid Kafka topic name")
        }
        return value
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = try string(name) else { return nil }
        guard let n = Int(value), range.contains(n) else {
            throw ConfigurationError(setting: name, problem: "expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    /// A size in bytes: a whole number, optionally followed by `KiB`, `MiB` or `GiB` (also
    /// `K`, `M`, `G`, powers of 1024), within `range`.
    func bytes(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = try string(name) else { return nil }
        let problem =
            "expected a size such as 64MiB, 512KiB, 1GiB or a number of bytes, "
            + "from \(range.lowerBound) to \(range.upperBound) bytes"
        guard let n = Self.parseBytes(value), range.contains(n) else {
            throw ConfigurationError(setting: name, problem: problem)
        }
        return n
    }

    static func parseBytes(_ text: String) -> Int? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let n = Int(digits) else { return nil }
        let shift: Int
        switch text.dropFirst(digits.count).trimmingWhitespace().lowercased() {
        case "", "b": shift = 0
        case "k", "kb", "kib": shift = 10
        case "m", "mb", "mib": shift = 20
        case "g", "gb", "gib": shift = 30
        default: return nil
        }
        let (product, overflow) = n.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : product
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    func boolean(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let value = try string(name) else { return nil }
        switch value.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(setting: name, problem: "expected true or false")
        }
    }

    /// Positive durations with a unit: `250ms`, `5s`, `2m`, `1h`, `8d` (`Duration(parsing:)`).
    func duration(_ name: String) throws(ConfigurationError) -> Duration? {
        guard let value = try string(name) else { return nil }
        guard let d = Duration(parsing: value), d > .zero else {
            throw ConfigurationError(setting: name, problem: "expected a positive duration such as 250ms, 5s, 2m, 1h or 8d")
        }
        return d
    }

    /// Each variable whose name starts with `prefix` (and is longer), sorted.
    func names(withPrefix prefix: String) -> [String] {
        names.insert(prefix)
        return environment.keys.sorted().filter { $0.hasPrefix(prefix) && $0.count > prefix.count }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
