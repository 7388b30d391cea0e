/// `*_FILE` contents for the settings tests: a path not listed cannot be read.
struct FakeFiles {
    struct NoSuchFile: Error {}
    var files: [String: String] = [:]

    var read: (String) throws -> String {
        let files = self.files
        return { path in
            guard let text = files[path] else { throw NoSuchFile() }
            return text
        }
    }
}
