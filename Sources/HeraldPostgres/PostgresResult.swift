/// The rows a statement returned, every value in PostgreSQL's text form (`t`/`f` for
/// booleans, `{a,b}` for arrays, ISO 8601 for timestamps), nil for SQL NULL.
public struct PostgresResult: Sendable {
    public let rows: [[String?]]
    public let columns: [String]
    /// Rows inserted, updated, deleted, selected or moved (`PQcmdTuples`); 0 when the command
    /// reports none.
    public let affectedRows: Int
    /// The command tag (`INSERT 0 3`, `SELECT 1`, `BEGIN`).
    public let commandTag: String

    public init(rows: [[String?]], columns: [String], affectedRows: Int, commandTag: String = "") {
        self.rows = rows
        self.columns = columns
        self.affectedRows = affectedRows
        self.commandTag = commandTag
    }

    public var count: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }

    /// The value in `row` of the first column named `column`; nil for NULL, and for a row or
    /// column that does not exist.
    public func string(_ row: Int, _ column: String) -> String? {
        guard rows.indices.contains(row), let index = columns.firstIndex(of: column), rows[row].indices.contains(index) else {
            return nil
        }
        return rows[row][index]
    }

    /// The value as an integer; nil for NULL, a missing cell or a value that is not one.
    public func int(_ row: Int, _ column: String) -> Int64? {
        string(row, column).flatMap { Int64($0) }
    }

    /// The value of a `boolean` column; nil for NULL, a missing cell or another type.
    public func bool(_ row: Int, _ column: String) -> Bool? {
        switch string(row, column) {
        case "t": true
        case "f": false
        default: nil
        }
    }
}
