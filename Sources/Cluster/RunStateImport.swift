// Coordinator.swift and StudyCoordinator.swift use `Checkpoint` and `RunReporter`, which moved
// from Cluster to RunState. Those files belong to the peer-layer change under way in parallel;
// until they say `import RunState` themselves, this re-export makes RunState visible to them.
// Delete this file then.
@_exported import RunState
