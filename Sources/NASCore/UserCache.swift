import Foundation

/// The per-user cache directory NASLab keeps generated files in (the default latency table,
/// generated datasets such as `fashion-scenes`): `$NASLAB_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/naslab`, else `~/.cache/naslab` (an empty variable counts as unset).
/// Nothing is created here; callers create the directory when they write into it.
public enum UserCache {
    /// The cache directory, read from the environment on every call.
    public static var directory: String {
        let environment = ProcessInfo.processInfo.environment
        if let dir = environment["NASLAB_CACHE_DIR"], !dir.isEmpty { return dir }
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return (cache as NSString).appendingPathComponent("naslab")
    }

    /// `fileName` inside ``directory``.
    public static func path(_ fileName: String) -> String {
        (directory as NSString).appendingPathComponent(fileName)
    }
}
