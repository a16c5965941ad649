import HyperOpt
import Models
import Testing

/// The λ sample of one task as an array.
private func lambdaSample(_ s: TaskSampler, step: UInt64, task: Int, lambdaHat: [Float]) -> [Float] {
    var out = [Float](repeating: .nan, count: lambdaHat.count)
    lambdaHat.withUnsafeBufferPointer { lh in
        out.withUnsafeMutableBufferPointer { o in
            s.lambda(step: step, task: task, lambdaHat: lh.baseAddress!, into: o.baseAddress!, count: lambdaHat.count)
        }
    }
    return out
}

private func trainRows(_ s: TaskSampler, step: UInt64, task: Int, n: Int) -> [Int32] {
    var rows: [Int32] = [99, 98, 97]   // stale contents must be replaced, not appended to
    s.trainRows(step: step, task: task, count: n, into: &rows)
    return rows
}

private func config(_ algorithm: Algorithm, batch: Int = 32, seed: UInt64 = 1) -> ExperimentConfig {
    var c = ExperimentConfig()
    c.algorithm = algorithm
    c.batchSize = batch
    c.validBatchSize = batch
    c.seed = seed
    return c
}

@Suite struct TaskSamplerTests {
    @Test("training and validation rows are a pure function of (seed, step, task)")
    func rowsArePure() {
        let a = TaskSampler(config: config(.joint)), b = TaskSampler(config: config(.joint))
        for step in [UInt64(0), 1, 1000] {
            for task in 0..<3 {
                let r = trainRows(a, step: step, task: task, n: 500)
                #expect(r == trainRows(a, step: step, task: task, n: 500))
                #expect(r == trainRows(b, step: step, task: task, n: 500), "another sampler, same config")
            }
            var v1: [Int32] = [], v2: [Int32] = [1]
            a.validRows(step: step, count: 500, into: &v1)
            b.validRows(step: step, count: 500, into: &v2)
            #expect(v1 == v2)
            #expect(v1 != trainRows(a, step: step, task: 0, n: 500), "validation uses its own stream")
        }
        // The static rule is the same function.
        var s: [Int32] = []
        TaskSampler.rows(seed: 1, step: 7, task: 2, stream: .trainBatch, batch: 32, of: 500, into: &s)
        #expect(s == trainRows(a, step: 7, task: 2, n: 500))
    }

    @Test("changing the seed, the step or the task changes the minibatch")
    func rowsDiffer() {
        let a = TaskSampler(config: config(.joint))
        let base = trainRows(a, step: 5, task: 1, n: 10_000)
        #expect(base != trainRows(a, step: 6, task: 1, n: 10_000))
        #expect(base != trainRows(a, step: 5, task: 0, n: 10_000))
        #expect(base != trainRows(TaskSampler(config: config(.joint, seed: 2)), step: 5, task: 1, n: 10_000))
    }

    @Test("a batch at least as large as the split is the whole split in order", arguments: [10, 11, 1000])
    func fullBatch(batch: Int) {
        let s = TaskSampler(config: config(.joint, batch: batch))
        for step in [UInt64(0), 3] {
            #expect(trainRows(s, step: step, task: 1, n: 10) == (0..<10).map(Int32.init))
            var v: [Int32] = [5, 5]
            s.validRows(step: step, count: 10, into: &v)
            #expect(v == (0..<10).map(Int32.init))
        }
    }

    @Test("sampled rows have the batch size, lie in 0..<n and cover the split uniformly")
    func rowsInRange() {
        let n = 37, batch = 20
        let s = TaskSampler(config: config(.joint, batch: batch))
        var counts = [Int](repeating: 0, count: n)
        for step in UInt64(0)..<2000 {
            let r = trainRows(s, step: step, task: Int(step % 3), n: n)
            #expect(r.count == batch)
            for x in r {
                #expect(x >= 0 && Int(x) < n)
                counts[Int(x)] += 1
            }
        }
        // 40,000 draws over 37 rows: chi² with 36 dof (mean 36, sd 8.5); allow 6 sd.
        let e = 40_000.0 / Double(n)
        let chi2 = counts.reduce(0.0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
        #expect(chi2 < 36 + 6 * 8.5, "chi² \(chi2)")
    }

    @Test("joint λ samples are λ̂ + σ·N(0, I): right mean and std per component, independent across tasks")
    func jointSamples() {
        var c = config(.joint)
        c.sigma = 0.5
        let s = TaskSampler(config: c)
        let lambdaHat: [Float] = [-3.5, 0, 1.25, -1, 2, -7, 0.5, 3, -2, 4]
        let n = 20_000
        var sum = [Double](repeating: 0, count: 10), sumSq = sum
        var cross = 0.0
        for i in 0..<n {
            let step = UInt64(i / 2), task = i % 2
            let l = lambdaSample(s, step: step, task: task, lambdaHat: lambdaHat)
            #expect(l == lambdaSample(s, step: step, task: task, lambdaHat: lambdaHat), "pure function")
            for k in 0..<10 {
                let d = Double(l[k]) - Double(lambdaHat[k])
                sum[k] += d; sumSq[k] += d * d
            }
            cross += (Double(l[0]) - Double(lambdaHat[0])) * (Double(l[1]) - Double(lambdaHat[1]))
        }
        for k in 0..<10 {
            let m = sum[k] / Double(n), sd = (sumSq[k] / Double(n) - m * m).squareRoot()
            // Standard errors: mean 0.0035, std 0.0025.
            #expect(abs(m) < 0.02, "component \(k): mean offset \(m)")
            #expect(abs(sd - 0.5) < 0.015, "component \(k): std \(sd)")
        }
        let corr = cross / Double(n) / 0.25
        #expect(abs(corr) < 0.04, "components 0 and 1 correlate: \(corr)")
        // Tasks of one step draw different samples.
        #expect(lambdaSample(s, step: 3, task: 0, lambdaHat: lambdaHat) != lambdaSample(s, step: 3, task: 1, lambdaHat: lambdaHat))
    }

    @Test("λ from noise drawn ahead (lambdaNoise, then lambda(noise:lambdaHat:)) is λ from (seed, step, task) bit for bit",
          arguments: [Algorithm.joint, .simplifiedJoint, .globalBestResponse])
    func noiseAheadIsTheSameSample(algorithm: Algorithm) {
        var c = config(algorithm)
        c.priorMin = -2; c.priorMax = 1
        let s = TaskSampler(config: c)
        // 7, 8, 16, 37 components: the 16-, 8- and 1-at-a-time paths of the normal generator.
        for h in [7, 8, 16, 37] {
            let lambdaHat: [Float] = (0..<h).map { -3.5 + 0.37 * Float($0) }
            for (step, task) in [(UInt64(0), 0), (5, 1), (123_456, 3)] {
                var noise = [Double](repeating: .nan, count: h)
                noise.withUnsafeMutableBufferPointer { s.lambdaNoise(step: step, task: task, into: $0.baseAddress!, count: h) }
                var fromNoise = [Float](repeating: .nan, count: h)
                noise.withUnsafeBufferPointer { n in
                    lambdaHat.withUnsafeBufferPointer { lh in
                        fromNoise.withUnsafeMutableBufferPointer { s.lambda(noise: n.baseAddress!, lambdaHat: lh.baseAddress!, into: $0.baseAddress!, count: h) }
                    }
                }
                let direct = lambdaSample(s, step: step, task: task, lambdaHat: lambdaHat)
                #expect(fromNoise.map(\.bitPattern) == direct.map(\.bitPattern), "H \(h), step \(step), task \(task)")
            }
        }
    }

    @Test("simplified-joint λ samples are λ̂ exactly, whatever σ is")
    func simplifiedSamples() {
        var c = config(.simplifiedJoint)
        c.sigma = 0.5
        #expect(c.effectiveSigma == 0)
        let s = TaskSampler(config: c)
        let lambdaHat: [Float] = [-3.5, 0.1, 2]
        for step in UInt64(0)..<20 {
            for task in 0..<3 { #expect(lambdaSample(s, step: step, task: task, lambdaHat: lambdaHat) == lambdaHat) }
        }
    }

    @Test("global-phase λ samples follow the clipped prior mean + std·N(0,1), ignoring λ̂")
    func globalSamples() {
        var c = config(.globalBestResponse)
        c.priorMean = 1; c.priorStd = 3; c.priorMin = -100; c.priorMax = 4
        let s = TaskSampler(config: c)
        let n = 40_000
        var values: [Double] = []
        for i in 0..<(n / 2) {
            let a = lambdaSample(s, step: UInt64(i), task: 0, lambdaHat: [-3.5, 100])
            let b = lambdaSample(s, step: UInt64(i), task: 0, lambdaHat: [7, 0])
            #expect(a == b, "λ̂ must not matter")
            values += a.map(Double.init)
        }
        #expect(values.allSatisfy { $0 >= -100 && $0 <= 4 })
        // P(1 + 3z > 4) = P(z > 1) = 0.1587: that mass sits exactly on the upper clip.
        let clipped = Double(values.filter { $0 == 4 }.count) / Double(n)
        #expect(abs(clipped - 0.1587) < 0.01, "fraction at the upper clip \(clipped)")
        // Below the clip the values are the unclipped normal: check its mean via the
        // truncated-normal formula E[x | x < 4] = 1 − 3·φ(1)/Φ(1) = 0.1320.
        let below = values.filter { $0 < 4 }
        let m = below.reduce(0, +) / Double(below.count)
        #expect(abs(m - 0.1320) < 0.05, "mean below the clip \(m)")
        // A tight box clips everything to its ends.
        var tight = c
        tight.priorMin = 0.5; tight.priorMax = 0.75
        for step in UInt64(0)..<200 {
            let l = lambdaSample(TaskSampler(config: tight), step: step, task: 1, lambdaHat: [0, 0, 0])
            #expect(l.allSatisfy { $0 >= 0.5 && $0 <= 0.75 })
        }
        // Zero prior std: every sample is the prior mean.
        var point = c
        point.priorStd = 0
        #expect(lambdaSample(TaskSampler(config: point), step: 9, task: 0, lambdaHat: [5, 5]) == [1, 1])
    }
}
