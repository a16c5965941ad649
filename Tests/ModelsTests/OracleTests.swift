import Foundation
import Testing
import Linalg
@testable import Models

// Compares the Swift training-loss pipeline — `Hypernet.forward`, `MLP.loss`,
// `Regularizer.addGradient`, `Hypernet.backward` — with an independent float64 numpy
// implementation of the same math (scripts/oracle/make_fixtures.py), on every hypernetwork
// kind × regularization scope × norm × prediction loss with 1-, 2- and 3-layer models.
// The fixture holds the inputs (data, minibatch rows, φ, λ) and the oracle's outputs; the
// script verified its own gradients with the complex-step method before writing it.

/// `Tests/ModelsTests/Fixtures/oracle.json`.
private struct OracleFixture: Decodable, Sendable {
    struct Setup: Decodable, Sendable {
        let layers: [Int]
        let hypernet: String
        let scope: String
        let phi: [Double]
        let lambda: [Double]
        let w: [Double]
    }
    struct Case: Decodable, Sendable {
        let setup: Int
        let norm: String
        let loss: String
        let lPred: Double
        let lReg: Double
        let lTrain: Double
        let gradWPred: [Double]
        let gradPhi: [Double]
        let gradLambda: [Double]
        let gradLambdaPred: [Double]
        let gradLambdaDirect: [Double]
    }
    let generator: String
    let selfCheckMaxRelativeError: Double
    let inputSize: Int
    let classes: Int
    let x: [[Double]]
    let labels: [Int]
    let rows: [Int32]
    let setups: [Setup]
    let cases: [Case]

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("oracle.json")

    static func load() throws -> OracleFixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(OracleFixture.self, from: Data(contentsOf: url))
    }

    /// Decoded once for all tests.
    static let shared = Result { try load() }
}

/// One case's quantities as the Swift code computes them (converted to Double).
private struct Computed {
    var w: [Double]
    var lPred: Double
    var lReg: Double
    var gradWPred: [Double]
    var gradPhi: [Double]
    var gradLambda: [Double]
    var gradLambdaPred: [Double]
    var gradLambdaDirect: [Double]
}

private struct CaseSpec: CustomStringConvertible {
    let shape: MLPShape
    let kind: HypernetKind
    let scope: RegularizationScope
    let norm: RegularizationNorm
    let loss: PredictionLoss
    var description: String { "\(shape) \(kind) \(scope.rawValue) \(norm.rawValue) \(loss.rawValue)" }
}

private func spec(_ c: OracleFixture.Case, _ s: OracleFixture.Setup) throws -> CaseSpec {
    CaseSpec(shape: MLPShape(s.layers),
             kind: try #require(HypernetKind(parsing: s.hypernet)),
             scope: try #require(RegularizationScope(rawValue: s.scope)),
             norm: try #require(RegularizationNorm(rawValue: c.norm)),
             loss: try #require(PredictionLoss(rawValue: c.loss)))
}

/// Runs the Swift pipeline in precision `T` on the fixture's inputs, the way a training task
/// (`∂L_train/∂φ`) and the validator (`∂L_pred(φ(λ))/∂λ`) use it.
private func compute<T: BLASScalar>(
    _ sp: CaseSpec, setup: OracleFixture.Setup, data: Examples<T>, rows: [Int32]
) throws -> Computed {
    let shape = sp.shape
    let reg = Regularizer(shape: shape, scope: sp.scope, norm: sp.norm)
    let h = reg.groupCount, d = shape.parameterCount
    try #require(setup.lambda.count == h, "λ has \(setup.lambda.count) values, the regularizer \(h) groups")
    let hn = Hypernet<T>(kind: sp.kind, inputCount: h, outputCount: d)
    try #require(setup.phi.count == hn.parameterCount, "φ has \(setup.phi.count) values, the hypernet \(hn.parameterCount)")
    let mlp = MLP<T>(shape: shape, maxBatch: rows.count)
    let phi = setup.phi.map { T($0) }
    let lambda = setup.lambda.map { T($0) }

    var w = [T](repeating: 0, count: d)
    hn.forward(phi: phi, lambda: lambda, w: &w)
    var gwPred = [T](repeating: 0, count: d)
    let lPred = rows.withUnsafeBufferPointer { mlp.loss(w: w, data: data, rows: $0, loss: sp.loss, grad: &gwPred) }
    var gw = gwPred
    var glDirect = [T](repeating: 0, count: h)
    var scratch = [T](repeating: 0, count: 2 * h)
    let lReg = reg.addGradient(w: w, lambda: lambda, gradW: &gw, gradLambda: &glDirect, scratch: &scratch)
    var gPhi = [T](repeating: 0, count: hn.parameterCount)
    var gl = [T](repeating: 0, count: h)
    hn.backward(phi: phi, lambda: lambda, gradW: gw, gradPhi: &gPhi, gradLambda: &gl)
    for i in 0..<h { gl[i] += glDirect[i] }
    var glPred = [T](repeating: 0, count: h)
    hn.backward(phi: phi, lambda: lambda, gradW: gwPred, gradPhi: nil, gradLambda: &glPred)

    let dbl: ([T]) -> [Double] = { $0.map { Double($0) } }
    return Computed(w: dbl(w), lPred: lPred, lReg: lReg, gradWPred: dbl(gwPred), gradPhi: dbl(gPhi),
                    gradLambda: dbl(gl), gradLambdaPred: dbl(glPred), gradLambdaDirect: dbl(glDirect))
}

/// `max_i |a_i − b_i| / max_i |b_i|`: error relative to the reference's largest magnitude.
private func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    let scale = b.map(abs).max() ?? 0
    let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    return scale > 0 ? diff / scale : diff
}

/// `|a − b| / max(|b|, floor)`.
private func relativeError(_ a: Double, _ b: Double, floor: Double) -> Double {
    abs(a - b) / max(abs(b), floor)
}

/// Compares every case in precision `T`; returns the worst error per quantity.
private func compareAll<T: BLASScalar>(
    _: T.Type, tolerance: Double, scalarFloor: Double
) throws -> [String: Double] {
    let fx = try OracleFixture.shared.get()
    let dataD = Examples<Double>(dense: fx.x, labels: fx.labels.map { UInt8($0) })
    let data: Examples<T> = dataD.converted()
    var worst: [String: Double] = [:]
    for c in fx.cases {
        let setup = fx.setups[c.setup]
        let sp = try spec(c, setup)
        let got = try compute(sp, setup: setup, data: data, rows: fx.rows)
        let errors: [(String, Double)] = [
            ("w", relativeError(got.w, setup.w)),
            ("L_pred", relativeError(got.lPred, c.lPred, floor: scalarFloor)),
            ("L_reg", relativeError(got.lReg, c.lReg, floor: scalarFloor)),
            ("L_train", relativeError(got.lPred + got.lReg, c.lTrain, floor: scalarFloor)),
            ("∂L_pred/∂w", relativeError(got.gradWPred, c.gradWPred)),
            ("∂L_train/∂φ", relativeError(got.gradPhi, c.gradPhi)),
            ("∂L_train/∂λ", relativeError(got.gradLambda, c.gradLambda)),
            ("∂L_pred(φ(λ))/∂λ", relativeError(got.gradLambdaPred, c.gradLambdaPred)),
            ("∂L_reg/∂λ (direct)", relativeError(got.gradLambdaDirect, c.gradLambdaDirect)),
        ]
        for (name, e) in errors {
            worst[name] = max(worst[name] ?? 0, e)
            #expect(e <= tolerance, "\(T.self) \(sp): \(name) differs from the numpy oracle by \(e) (relative)")
        }
    }
    return worst
}

private func summary(_ worst: [String: Double]) -> String {
    worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1e", $0.value))" }.joined(separator: ", ")
}

@Suite struct OracleTests {
    @Test("The oracle fixture covers every hypernet kind, scope, norm and loss with 1-, 2- and 3-layer models")
    func coverage() throws {
        let fx = try OracleFixture.shared.get()
        #expect(fx.selfCheckMaxRelativeError < 1e-10, "the generator's complex-step self-check")
        #expect(fx.cases.count >= 100)
        #expect(Set(fx.rows).count < fx.rows.count, "the minibatch repeats a row")
        let zeros = fx.x.joined().filter { $0 == 0 }.count
        let fraction = Double(zeros) / Double(fx.x.count * fx.inputSize)
        #expect(fraction > 0.3 && fraction < 0.7, "about half the pixels are zero")
        for layers in [[12, 4], [12, 6, 4], [12, 6, 5, 4]] {
            var kinds = Set<String>(), scopes = Set<String>(), norms = Set<String>(), losses = Set<String>()
            for c in fx.cases where fx.setups[c.setup].layers == layers {
                let s = fx.setups[c.setup]
                kinds.insert(s.hypernet); scopes.insert(s.scope); norms.insert(c.norm); losses.insert(c.loss)
            }
            #expect(kinds == ["linear", "mlp:3", "factorized:2"], "\(layers)")
            #expect(scopes == Set(RegularizationScope.allCases.map(\.rawValue)), "\(layers)")
            #expect(norms == Set(RegularizationNorm.allCases.map(\.rawValue)), "\(layers)")
            #expect(losses == Set(PredictionLoss.allCases.map(\.rawValue)), "\(layers)")
        }
        for c in fx.cases {
            #expect(abs(c.lPred + c.lReg - c.lTrain) <= 1e-11 * abs(c.lTrain))
        }
    }

    @Test("Double: w, L_pred, L_reg, L_train and every gradient agree with the independent numpy oracle to 1e-9 relative")
    func doublePrecision() throws {
        let worst = try compareAll(Double.self, tolerance: 1e-9, scalarFloor: 1e-300)
        print("OracleTests Double worst relative errors: \(summary(worst))")
    }

    @Test("Float: w, losses and gradients agree with the numpy oracle to 1e-4 of the largest magnitude (float tolerance)")
    func floatPrecision() throws {
        let worst = try compareAll(Float.self, tolerance: 1e-4, scalarFloor: 1)
        print("OracleTests Float worst relative errors: \(summary(worst))")
    }
}
