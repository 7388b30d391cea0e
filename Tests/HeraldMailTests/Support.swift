import Foundation
import HeraldCore
import HeraldMail

/// The repository's Templates/ folder.
let templatesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("Templates").path
}()

/// The repository's templates, loaded once.
let repositoryTemplates: MailTemplates = {
    do {
        return try MailTemplates(directory: templatesDirectory)
    } catch {
        fatalError("Templates/ does not load: \(error)")
    }
}()

func tag(_ text: String) -> LanguageTag { try! LanguageTag(text) }

/// A copy of Templates/ in a fresh temporary directory, removed by `remove()`.
struct TemplatesCopy {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "herald-mail-tests-\(UUID().uuidString)/Templates"
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: templatesDirectory, toPath: path)
    }

    func file(_ relative: String) -> String { "\(path)/\(relative)" }

    func write(_ relative: String, _ text: String) throws {
        try text.write(toFile: file(relative), atomically: true, encoding: .utf8)
    }

    func read(_ relative: String) throws -> String {
        try String(contentsOfFile: file(relative), encoding: .utf8)
    }

    func delete(_ relative: String) throws {
        try FileManager.default.removeItem(atPath: file(relative))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }

    /// Loads the copy and returns the error it fails with.
    func loadError(defaultLocale: String = "en") -> TemplateError? {
        do {
            _ = try MailTemplates(directory: path, defaultLocale: defaultLocale)
            return nil
        } catch {
            return error
        }
    }
}
