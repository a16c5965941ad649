/// A failure of a command's work (not of its arguments, which `validate()` reports): printed
/// as `Error: <description>`, exit status 1.
struct CommandError: Error, CustomStringConvertible {
    /// One line saying what failed and what to do.
    let description: String

    init(_ description: String) { self.description = description }
}
