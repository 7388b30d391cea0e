import HeraldSettings
import Testing

@Suite("The make run database")
struct MakeRunDatabaseTests {
    let file: (String) throws -> String = { path in
        guard path == MakeRunDatabase.urlFile else { throw FakeFiles.NoSuchFile() }
        return "postgresql://herald@127.0.0.1:5433/herald\n"
    }

    @Test("used when none of the variables is set, in either form")
    func used() {
        let (environment, used) = MakeRunDatabase.environment(["PATH": "/bin"], unless: ["HERALD_DATABASE_URL"], readFile: file)
        #expect(used)
        #expect(environment["HERALD_DATABASE_URL"] == "postgresql://herald@127.0.0.1:5433/herald")
        #expect(environment["PATH"] == "/bin")
    }

    @Test("not used when a variable is set, or without the file")
    func notUsed() {
        for set in [["HERALD_DATABASE_URL": "x"], ["HERALD_DATABASE_URL_FILE": "/x"], ["HERALD_OUTBOX_DATABASE_URL": "y"]] {
            let (environment, used) = MakeRunDatabase.environment(
                set, unless: ["HERALD_OUTBOX_DATABASE_URL", "HERALD_DATABASE_URL"], readFile: file)
            #expect(!used)
            #expect(environment == set)
        }
        let (_, used) = MakeRunDatabase.environment([:], unless: ["HERALD_DATABASE_URL"], readFile: { _ in throw FakeFiles.NoSuchFile() })
        #expect(!used)
    }
}
