import Foundation
import HeraldSettings
import Testing

/// The README's configuration table is the single list of settings: every `HERALD_*` name the
/// code reads is a row, and every row is read.
@Suite("The README's configuration table")
struct ReadmeTableTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Lines of `| variable | meaning | default |` rows: the names in the first cell. A cell may
    /// list several (`HERALD_A`, `HERALD_B`) and abbreviate a name by its last parts after the
    /// previous one's prefix (`HERALD_LINK_PATH_RESET_PASSWORD`, `…_EMAIL_CHANGE`).
    static func tableNames() throws -> Set<String> {
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        guard let start = readme.range(of: "| variable | meaning | default |") else { throw TableMissing() }
        var names: Set<String> = []
        for line in readme[start.upperBound...].split(separator: "\n").dropFirst() {
            guard line.hasPrefix("|") else { break }
            let cell = line.split(separator: "|", omittingEmptySubsequences: false)[1]
            var previous: String?
            for code in cell.split(separator: "`").enumerated().filter({ $0.offset % 2 == 1 }).map({ String($0.element) }) {
                var name = code
                if name.hasPrefix("…_"), let previous {
                    let suffix = name.dropFirst(2)
                    let parts = previous.split(separator: "_")
                    let kept = parts.count - suffix.split(separator: "_").count
                    name = parts.prefix(kept).joined(separator: "_") + "_" + suffix
                }
                if name.hasSuffix("_<NAME>") { name = String(name.dropLast("<NAME>".count)) }
                names.insert(name)
                previous = name
            }
        }
        return names
    }

    struct TableMissing: Error {}

    @Test("every HERALD_* variable the settings read is in the table, and every row is read")
    func tableMatchesTheCode() throws {
        let documented = try Self.tableNames()
        let read = HeraldSettings.names
        #expect(!read.isEmpty)
        #expect(read.subtracting(documented).isEmpty, "read but not in the README's table: \(read.subtracting(documented).sorted())")
        #expect(documented.subtracting(read).isEmpty, "in the README's table but never read: \(documented.subtracting(read).sorted())")
    }

    /// Any `HERALD_*` name in a string literal anywhere in Sources/: the settings' names, and
    /// names in messages (`HERALD_OUTBOX_ENABLED=true`, `…_PASSWORD_FILE`), must be rows.
    /// Variables of the development tools, not of Herald (documented where the tool is:
    /// `HERALD_FUZZ_TARGET` in RELIABILITY.md).
    static let toolVariables: Set = ["HERALD_FUZZ_TARGET"]

    @Test("every HERALD_* name in the sources' string literals is in the table")
    func sourcesNameOnlyDocumentedVariables() throws {
        let documented = try Self.tableNames()
        let sources = Self.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        #expect(files.count > 50)
        let pattern = try Regex("HERALD_[A-Z0-9_]*[A-Z0-9]")
        var unknown: Set<String> = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                // The parts of the line inside double quotes.
                for (i, literal) in line.split(separator: "\"", omittingEmptySubsequences: false).enumerated() where i % 2 == 1 {
                    for match in literal.matches(of: pattern) {
                        var name = String(literal[match.range])
                        if name.hasSuffix("_FILE"), documented.contains(String(name.dropLast(5))) { name = String(name.dropLast(5)) }
                        let isProperty = name.hasPrefix("HERALD_KAFKA_PROPERTY") && documented.contains("HERALD_KAFKA_PROPERTY_")
                        if !documented.contains(name) && !isProperty && !Self.toolVariables.contains(name) {
                            unknown.insert("\(file.lastPathComponent): \(name)")
                        }
                    }
                }
            }
        }
        #expect(unknown.isEmpty, "named in the sources but not in the README's table: \(unknown.sorted())")
    }
}
