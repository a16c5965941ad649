/// A named set of defaults for the settings a user did not give.
public enum Recipe: String, Sendable, Codable, CaseIterable {
    /// The paper's form: w = φ(λ), φ ~ 0.01·N(0,1), fixed σ, constant step sizes, no guard,
    /// the hypernetwork's answer. The presets' settings as they are.
    case paper
    /// Hypertrain's default (EXPERIMENTS.md, "The default recipe").
    case stable
}
