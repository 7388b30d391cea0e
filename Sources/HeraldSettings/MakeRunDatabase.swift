/// The client commands that need a database (`mail`, `migrate`, `outbox`) in a `make run`
/// tree: with none of their database variables set, they use the database `make run` started
/// (its URL in `var/postgres/url`), as `publish` and `lag` use its broker. `herald run`
/// never does this.
public enum MakeRunDatabase {
    /// Where `make run` (scripts/postgres.sh) writes the URL of the PostgreSQL it started.
    public static let urlFile = "var/postgres/url"

    /// `environment` with `HERALD_DATABASE_URL` from `urlFile` when none of `variables` (nor
    /// their `_FILE` forms) is set and the file holds a URL; `used` says whether it did.
    public static func environment(
        _ environment: [String: String], unless variables: [String], readFile: (String) throws -> String
    ) -> (environment: [String: String], used: Bool) {
        let isSet = variables.contains { environment[$0] != nil || environment[$0 + "_FILE"] != nil }
        guard !isSet, let url = (try? readFile(urlFile))?.trimmingWhitespace(), !url.isEmpty else { return (environment, false) }
        var changed = environment
        changed["HERALD_DATABASE_URL"] = url
        return (changed, true)
    }
}
