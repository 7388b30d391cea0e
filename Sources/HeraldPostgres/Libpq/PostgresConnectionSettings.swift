import CLibpq

/// What `PQconnectdbParams` receives for every new connection, worked out once from the
/// connection string: libpq parses it (`PQconninfoParse`) so that the password is known,
/// to keep it out of every message, and the endpoint can be logged without it.
struct PostgresConnectionSettings: Sendable {
    /// Keyword/value pairs; the first is `dbname` = the whole connection string, expanded by
    /// libpq (`expand_dbname = 1`) so that a URI's own parameters, `sslmode` included, apply.
    let parameters: [(keyword: String, value: String)]
    /// `host=… port=… dbname=… user=…` from the connection string, never the password.
    let endpoint: String
    /// Texts to remove from libpq's messages (the password).
    let secrets: [String]
    /// Set when libpq cannot parse the connection string; every connect throws it.
    let invalid: PostgresError?
    /// Whether connections prepare the statements they run (`PostgresConnection.execute`).
    var preparesStatements = true

    init(
        conninfo: String, password: String?, connectTimeout: Duration, statementTimeout: Duration, applicationName: String
    ) {
        let (options, parseError) = Self.parse(conninfo)
        var secrets = [password, options["password"]].compactMap { $0 }.filter { !$0.isEmpty }
        secrets.sort { $0.count > $1.count }
        self.secrets = secrets
        if let parseError {
            self.invalid = .make(
                .misconfigured,
                "the PostgreSQL connection string is not a valid libpq URI or conninfo: "
                    + PostgresError.cleaned(PostgresError.redactingQuotes(parseError), redacting: secrets))
        } else if conninfo.utf8.contains(0) {
            self.invalid = .make(.misconfigured, "the PostgreSQL connection string contains a NUL byte")
        } else {
            self.invalid = nil
        }
        self.endpoint = Self.describe(options)

        // Later keywords override earlier ones, including those the URI expands to. The
        // URI's own `options`, `connect_timeout` and `application_name` win over Herald's
        // defaults: the statement timeout goes first in `options`, where a later `-c` in
        // the URI replaces it.
        var parameters: [(keyword: String, value: String)] = [("dbname", conninfo)]
        var serverOptions = "-c statement_timeout=\(Self.milliseconds(statementTimeout))"
        if let own = options["options"], !own.isEmpty { serverOptions += " " + own }
        parameters.append(("options", serverOptions))
        if options["connect_timeout"] == nil {
            parameters.append(("connect_timeout", String(Self.wholeSeconds(connectTimeout))))
        }
        if options["application_name"] == nil, !applicationName.utf8.contains(0) {
            parameters.append(("application_name", applicationName))
        }
        if let password, !password.utf8.contains(0) {
            parameters.append(("password", password))
        }
        // Swift strings are UTF-8; PostgreSQL converts to the database's encoding.
        parameters.append(("client_encoding", "UTF8"))
        self.parameters = parameters
    }

    /// The connection string's explicit keywords and values, or libpq's parse error.
    private static func parse(_ conninfo: String) -> ([String: String], String?) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(conninfo, &errorMessage) else {
            defer { if let errorMessage { PQfreemem(errorMessage) } }
            return ([:], errorMessage.map { String(cString: $0) } ?? "out of memory")
        }
        defer { PQconninfoFree(parsed) }
        var options: [String: String] = [:]
        var option = parsed
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { options[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        return (options, nil)
    }

    private static func describe(_ options: [String: String]) -> String {
        let keys = ["host", "hostaddr", "port", "dbname", "user", "sslmode"]
        let parts = keys.compactMap { key in options[key].map { "\(key)=\($0)" } }
        return parts.isEmpty ? "(libpq defaults)" : parts.joined(separator: " ")
    }

    /// Milliseconds for `statement_timeout`; 0 (no timeout) for zero or negative durations.
    static func milliseconds(_ duration: Duration) -> Int64 {
        guard duration > .zero else { return 0 }
        return max(1, duration.wholeMilliseconds)
    }

    /// Whole seconds for `connect_timeout`, rounded up, at least 1 (libpq treats 0 as
    /// "wait forever").
    static func wholeSeconds(_ duration: Duration) -> Int64 {
        max(1, duration.secondsRoundedUp)
    }
}
