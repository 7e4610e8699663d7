/// A coding key named at run time: for JSON objects whose keys depend on the data (a record's
/// `val_<metric>` column, a task's `test_<metric>` values).
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ name: String) { stringValue = name }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}
