/**
 * Testing tools for replivol and its users: the simulated network, the deterministic replication
 * and cluster simulators (seeded, under TestClock), and memory stores.
 */
export { makeSimNetwork, mulberry32, calmFaults, type SimNetwork, type SimFaults, type SimRandom } from "./simNetwork.ts"
export { runReplicationSim, type ReplicationSimOptions, type ReplicationSimResult } from "./replicationSim.ts"
export { runClusterSim, type ClusterSimOptions, type ClusterSimResult, type Sabotage } from "./clusterSim.ts"
export type { FaultKind, FaultWeights } from "./clusterFaults.ts"
export { makeMemoryStore, type MemoryStore } from "../store/memory.ts"
export { makeMemoryStores } from "../store/Stores.ts"
export { seededEntropy } from "../net/entropy.ts"
