/// Bad runtime input (exit status 2 in `sae-run`, 400 from `sae-run serve`): names the flag, file
/// or request key and what was expected.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case badInput(String)
    public var description: String {
        switch self { case .badInput(let s): s }
    }
}
