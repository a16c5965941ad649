import HyperOpt
import Testing

@Suite struct StepPlanTests {
    @Test("joint and simplified-joint take S training tasks and a λ̂ step at every step",
          arguments: [Algorithm.joint, .simplifiedJoint])
    func jointPlans(algorithm: Algorithm) {
        var c = ExperimentConfig()
        c.algorithm = algorithm
        c.samplesPerStep = 3
        c.phase1Steps = 5      // ignored outside the global algorithm
        for step in [UInt64(0), 1, 4, 5, 6, 9_999, 1 << 40] {
            let p = StepPlan(step: step, config: c)
            #expect(p.trainTasks == 3 && p.validate, "step \(step)")
        }
    }

    @Test("the global algorithm trains φ only before phase1Steps and λ̂ only from then on")
    func globalPhaseSwitch() {
        var c = ExperimentConfig()
        c.algorithm = .globalBestResponse
        c.samplesPerStep = 10
        c.steps = 100
        c.phase1Steps = 60
        for step in UInt64(0)..<100 {
            let p = StepPlan(step: step, config: c)
            if step < 60 {
                #expect(p.trainTasks == 10 && !p.validate, "step \(step)")
            } else {
                #expect(p.trainTasks == 0 && p.validate, "step \(step)")
            }
        }
        // Plans are values: the same step under the same config gives an equal plan.
        #expect(StepPlan(step: 59, config: c) == StepPlan(step: 59, config: c))
        #expect(StepPlan(step: 59, config: c) != StepPlan(step: 60, config: c))
    }

    @Test("global with phase1Steps = 0 is all phase 2; with phase1Steps = steps it is all phase 1")
    func globalEdges() {
        var c = ExperimentConfig()
        c.algorithm = .globalBestResponse
        c.steps = 10
        c.phase1Steps = 0
        #expect(c.problems().isEmpty)
        for step in UInt64(0)..<10 { #expect(StepPlan(step: step, config: c).trainTasks == 0) }
        c.phase1Steps = 10
        #expect(c.problems().isEmpty)
        for step in UInt64(0)..<10 {
            let p = StepPlan(step: step, config: c)
            #expect(p.trainTasks == c.samplesPerStep && !p.validate)
        }
    }
}
