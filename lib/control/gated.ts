/**
 * A view of a control store that becomes unreachable while `cut()` says so: every operation
 * (and every new watch) fails with `ControlError` reason `unreachable`, naming `why()`.
 *
 * This is how a process loses its control store without stopping: a node partitioned from etcd
 * in the simulator, or a node of a local cluster "killed" in a crash drill, whose lease must then
 * expire as after a real crash instead of being revoked.
 */
import { Effect, Stream } from "effect"
import { ControlError, type ControlStoreShape } from "./ControlStore.ts"

export const gatedControlStore = (inner: ControlStoreShape, cut: () => boolean, why: () => string): ControlStoreShape => {
  const unreachable = () => new ControlError({ reason: "unreachable", message: why() })
  const gate = <A>(effect: Effect.Effect<A, ControlError>) => Effect.suspend(() => (cut() ? Effect.fail(unreachable()) : effect))
  return {
    get: (key) => gate(inner.get(key)),
    list: (prefix) => gate(inner.list(prefix)),
    put: (key, value, options) => gate(inner.put(key, value, options)),
    delete: (key) => gate(inner.delete(key)),
    transaction: (txn) => gate(inner.transaction(txn)),
    grantLease: (ttlMs) => gate(inner.grantLease(ttlMs)),
    keepAlive: (lease) => gate(inner.keepAlive(lease)),
    revokeLease: (lease) => gate(inner.revokeLease(lease)),
    watch: (prefix) => Stream.unwrap(Effect.sync(() => (cut() ? Stream.fail(unreachable()) : inner.watch(prefix)))),
  }
}
